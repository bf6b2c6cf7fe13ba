#!/bin/sh
# Post-build script of the Weir images (BR2_ROOTFS_POST_BUILD_SCRIPT), run
# after the packages and the overlay are in the target directory; `make
# image-smoke` runs it on its emulated board's root too.
#
#   post-build.sh TARGET_DIR [--board PROFILE] [--console TTY]
#
#   --board PROFILE  the gateway's board section (board.profile), added to
#                    /etc/weir/weir.yaml unless the file has one already
#   --console TTY    the port that serves `weir console` in place of a
#                    getty (ttyAMA1, ttyS0...)
set -eu

target=${1:?usage: post-build.sh TARGET_DIR [--board PROFILE] [--console TTY]}
shift
board=
console=
while [ $# -gt 0 ]; do
	case $1 in
	--board)
		board=${2:?--board needs a profile}
		shift 2
		;;
	--console)
		console=${2:?--console needs a tty}
		shift 2
		;;
	*)
		echo "post-build.sh: unknown argument '$1' (expected --board PROFILE, --console TTY)" >&2
		exit 2
		;;
	esac
done

# The technician's console, respawned by init. Its standard streams are
# /dev/null (the "null" id): the port belongs to `weir console` alone, and
# the script sends the console's own log to syslog.
inittab=$target/etc/inittab
if [ -n "$console" ]; then
	[ -f "$inittab" ] || {
		echo "post-build.sh: $inittab missing: the images use BusyBox init" >&2
		exit 1
	}
	sed -i '/# WEIR_CONSOLE$/d' "$inittab"
	echo "null::respawn:/usr/libexec/weir/console /dev/$console # WEIR_CONSOLE" >>"$inittab"
fi

# Serial lines belong to the dialout group, as udev's rules make them on
# a distribution: the gateway (in dialout) polls its RS-485 line and
# sensors through them. mdev takes the first rule that matches, so these
# go first; Buildroot's own rules leave them root's.
mdev=$target/etc/mdev.conf
if [ -f "$mdev" ]; then
	sed -i '/^# weir: serial lines$/,/^# weir: end$/d' "$mdev"
	{
		echo '# weir: serial lines'
		printf '%s\troot:dialout 660\n' 'ttyS[0-9]*' 'ttyAMA[0-9]*' 'ttyUSB[0-9]*' 'ttyACM[0-9]*'
		echo '# weir: end'
		cat "$mdev"
	} >"$mdev.weir"
	mv "$mdev.weir" "$mdev"
fi

# The board section, for the board the image is for.
conf=$target/etc/weir/weir.yaml
if [ -n "$board" ] && ! grep -q '^board:' "$conf"; then
	printf '# The board this image was built for (board/example.yaml lists every key).\nboard:\n  profile: %s\n' "$board" >>"$conf"
fi

# linuxptp's package installs its own init scripts and configuration;
# the overlay's S65ptp4l and /etc/linuxptp/ptp4l.conf replace them, and
# phc2sys has nothing to do with software time stamps.
rm -f "$target/etc/init.d/S66phc2sys" "$target/etc/linuxptp.cfg"

# The data partition's mount point, on the read-only root.
mkdir -p "$target/var/lib/weir"
