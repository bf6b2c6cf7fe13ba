#!/bin/sh
# Post-fakeroot script of the Weir images (BR2_ROOTFS_POST_FAKEROOT_SCRIPT),
# run once the users exist: /etc/weir (the configuration, with the console's
# password hash, and a site's uplink key) becomes root's, readable by weir's
# group and no one else. `make image-smoke` runs it on its emulated board's
# root too.
#
#   post-fakeroot.sh TARGET_DIR
set -eu

target=${1:?usage: post-fakeroot.sh TARGET_DIR}
gid=$(awk -F: '$1 == "weir" { print $3 }' "$target/etc/group")
if [ -z "$gid" ]; then
	echo "post-fakeroot.sh: no weir group in $target/etc/group (is BR2_PACKAGE_WEIR on?)" >&2
	exit 1
fi
chown -R "0:$gid" "$target/etc/weir"
chmod -R u=rwX,g=rX,o= "$target/etc/weir"
