#!/bin/bash
# Build hako's default container root file system, a directory: Debian's
# busybox-static with one symlink per applet, and the few files in /etc that
# programs look up. host/image/ turns it into an ext4 image for the guest.
# Every entry gets the same timestamp and, when built as root (as setup runs),
# owner root, so images made from it do not depend on when it was built.
# Usage: build.sh OUTPUT_DIR   (must not exist yet)
set -euo pipefail
out=${1:?usage: rootfs/build.sh OUTPUT_DIR}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "rootfs/build.sh: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }

mkdir "$out"
mkdir -p "$out"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,run,root,home,var/tmp}
chmod 1777 "$out/tmp" "$out/var/tmp"
chmod 0700 "$out/root"
install -m 0755 "$busybox" "$out/bin/busybox"
"$busybox" --list-full | while read -r applet; do
	[ -e "$out/$applet" ] || ln -s /bin/busybox "$out/$applet"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$out/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$out/etc/group"
printf '%s\n' '127.0.0.1	localhost' >"$out/etc/hosts"
: >"$out/etc/resolv.conf"
chmod 0644 "$out"/etc/*

if [ "$(id -u)" = 0 ]; then chown -hR 0:0 "$out"; fi
find "$out" -exec touch -h -d @0 {} +
