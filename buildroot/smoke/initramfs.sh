#!/usr/bin/env bash
# Assembles the emulated board's root file system, the same as a Buildroot
# image's but from Debian's arm64 packages (a Buildroot build needs
# downloads the test machines do not have), as a gzipped initramfs:
#
#   buildroot/smoke/initramfs.sh DEBS_DIR WEIR_ARM64 OUT.cpio.gz KERNEL_OUT
#
#   DEBS_DIR     busybox-static and linux-image-*-arm64 .debs (scripts/deps.sh image)
#   WEIR_ARM64   the static linux/arm64 weir (make cross)
#
# What goes in, in the order a Buildroot build puts it there:
#   1. buildroot/smoke/skeleton: /init (what Buildroot's kernel and root
#      file system give a board before init), inittab, rcS, fstab, the
#      base users, syslogd and the network of QEMU's user mode
#   2. BusyBox (applet links made by /init), the kernel's modules for
#      virtio and ext4
#   3. the weir package as weir.mk installs it: /usr/bin/weir, the user
#      its WEIR_USERS line names, dist/busybox/S95weir
#   4. the rootfs overlay (buildroot/board/weir/rootfs-overlay)
#   5. post-build.sh --console ttyAMA0, then post-fakeroot.sh
# The kernel image goes to KERNEL_OUT. The site's files (configuration,
# certificates) are a second archive the smoke test appends.
set -euo pipefail

debs=${1:?usage: initramfs.sh DEBS_DIR WEIR_ARM64 OUT.cpio.gz KERNEL_OUT}
weir=${2:?usage: initramfs.sh DEBS_DIR WEIR_ARM64 OUT.cpio.gz KERNEL_OUT}
out=${3:?usage: initramfs.sh DEBS_DIR WEIR_ARM64 OUT.cpio.gz KERNEL_OUT}
kernel_out=${4:?usage: initramfs.sh DEBS_DIR WEIR_ARM64 OUT.cpio.gz KERNEL_OUT}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
external=$repo/buildroot

one() {
	local found=("$@")
	if [ ${#found[@]} -ne 1 ] || [ ! -f "${found[0]}" ]; then
		echo "initramfs: want one package, found: ${found[*]} (scripts/deps.sh image fetches them)" >&2
		exit 1
	fi
	echo "${found[0]}"
}
bb_deb=$(one "$debs"/busybox-static_*_arm64.deb)
kernel_deb=$(one "$debs"/linux-image-*-arm64_*_arm64.deb)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"

# 1. The skeleton.
cp -a "$here/skeleton/." "$root/"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,var/lib,lib/modules}
chmod 1777 "$root/tmp"
ln -s ../run "$root/var/run"
ln -s ../tmp "$root/var/log"

# 2. BusyBox and the kernel's modules.
dpkg-deb -x "$bb_deb" "$work/busybox"
install -m 0755 "$work/busybox/bin/busybox" "$root/bin/busybox"
dpkg-deb -x "$kernel_deb" "$work/kernel"
kver=$(basename "$(ls -d "$work"/kernel/lib/modules/*)")
cp "$work/kernel/boot/vmlinuz-$kver" "$kernel_out"
mods=$work/kernel/lib/modules/$kver
# Each module after those it depends on (the depends= field of its
# .modinfo section).
loaded=()
want() {
	local m=$1 f d
	for d in "${loaded[@]:-}"; do [ "$d" = "$m" ] && return; done
	f=$(find "$mods" -name "$m.ko" -o -name "${m//_/-}.ko" | head -n 1)
	[ -n "$f" ] || { echo "initramfs: module $m not in $kernel_deb" >&2; exit 1; }
	for d in $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | tr ',' ' '); do
		want "$d"
	done
	cp "$f" "$root/lib/modules/$m.ko"
	loaded+=("$m")
}
for m in virtio_pci virtio_blk virtio_net virtio-rng crc32c_generic ext4; do
	want "$m"
done
printf '%s\n' "${loaded[@]}" >"$root/lib/modules/load"

# 3. The weir package, as buildroot/package/weir/weir.mk installs it.
install -D -m 0755 "$weir" "$root/usr/bin/weir"
install -D -m 0755 "$repo/dist/busybox/S95weir" "$root/etc/init.d/S95weir"
# WEIR_USERS (makeusers syntax): name uid group gid password home shell
# groups comment. A uid or gid of -1 is a system id; 999 here.
read -r user uid group gid _ home shell groups _ < <(sed -n '/^define WEIR_USERS/,/^endef/{/^\t/p}' "$external/package/weir/weir.mk")
[ -n "$user" ] || { echo "initramfs: no WEIR_USERS line in weir.mk" >&2; exit 1; }
[ "$uid" = -1 ] && uid=999
[ "$gid" = -1 ] && gid=999
[ "$shell" = - ] && shell=/bin/false
echo "$group:x:$gid:" >>"$root/etc/group"
echo "$user:x:$uid:$gid:Weir edge gateway:$home:$shell" >>"$root/etc/passwd"
for g in ${groups//,/ }; do
	[ "$g" = - ] && continue
	sed -i "s/^\($g:x:[0-9]*:\)\(.*\)$/\1\2,$user/; s/:,/:/" "$root/etc/group"
done
mkdir -p "$root$home"
chown "$uid:$gid" "$root$home"

# 4. The overlay.
cp -a "$external/board/weir/rootfs-overlay/." "$root/"

# 5. The post-build and post-fakeroot scripts, as Buildroot runs them.
"$external/board/weir/post-build.sh" "$root" --console ttyAMA0
"$external/board/weir/post-fakeroot.sh" "$root"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -n -1 >"$out"
echo "initramfs: $out ($(du -h "$out" | cut -f1)), kernel $kver, modules ${loaded[*]}, busybox $(basename "$bb_deb")"
