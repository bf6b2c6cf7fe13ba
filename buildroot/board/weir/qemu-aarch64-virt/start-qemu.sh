#!/bin/sh
# Boots the image in QEMU (Debian: qemu-system-arm), from the directory of
# the images: the console (the technician's, `weir console`) on this
# terminal, the Modbus line (/dev/ttyS0 in the guest) on a new pty QEMU
# names at start, the network through QEMU's user mode (the host is
# 10.0.2.2 from the guest). The data partition is in disk.img: it outlives
# the emulator, as it would a power cut.
cd "$(dirname "$0")" || exit 1
exec qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 512 -nographic \
	-kernel Image -append "root=/dev/vda1 rootfstype=ext4 rootwait ro console=ttyAMA0 quiet" \
	-drive file=disk.img,if=none,format=raw,id=disk -device virtio-blk-pci,drive=disk \
	-netdev user,id=net -device virtio-net-pci,netdev=net,romfile= \
	-device virtio-rng-pci \
	-chardev pty,id=modbus -device pci-serial,chardev=modbus \
	"$@"
