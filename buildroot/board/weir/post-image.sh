#!/usr/bin/env bash
# Post-image script of the Weir images (BR2_ROOTFS_POST_IMAGE_SCRIPT):
# makes the disk image with genimage, from the board's configuration.
#
#   post-image.sh BINARIES_DIR GENIMAGE_CFG
#
# A configuration ending in .in is a template whose #BOOT_FILES# line
# becomes the files the Raspberry Pi firmware boots from (its own, the
# device trees and overlays, the kernel named in config.txt). Beside the
# configuration, an extlinux.conf is installed for U-Boot and a
# start-qemu.sh copied next to the images.
set -euo pipefail

binaries=${1:?usage: post-image.sh BINARIES_DIR GENIMAGE_CFG}
cfg=${2:?usage: post-image.sh BINARIES_DIR GENIMAGE_CFG}
dir=$(dirname "$cfg")

if [[ $cfg == *.in ]]; then
	out=$binaries/genimage.cfg
	files=()
	for f in "$binaries"/*.dtb "$binaries"/rpi-firmware/*; do
		[ -e "$f" ] && files+=("${f#"$binaries"/}")
	done
	kernel=$(sed -n 's/^kernel=//p' "$binaries/rpi-firmware/config.txt")
	files+=("${kernel:?no kernel= line in rpi-firmware/config.txt}")
	list=$(printf '\t\t\t"%s",\n' "${files[@]}")
	list=${list%,}
	awk -v list="$list" '/^#BOOT_FILES#$/ { print list; next } { print }' "$cfg" >"$out"
	cfg=$out
fi

if [ -f "$dir/extlinux.conf" ]; then
	install -D -m 0644 "$dir/extlinux.conf" "$binaries/extlinux/extlinux.conf"
fi
if [ -f "$dir/start-qemu.sh" ]; then
	install -m 0755 "$dir/start-qemu.sh" "$binaries/start-qemu.sh"
fi

# Buildroot's own genimage wrapper (post-image scripts run from its top
# directory): an empty root path, the images of BINARIES_DIR as inputs, so
# the data partition starts empty.
exec support/scripts/genimage.sh -c "$cfg"
