#!/bin/bash
# Build the hako guest initramfs: busybox-static + /init + guest/tools, as an
# uncompressed newc cpio (decompression would run emulated on PVM hosts, which
# is slow).
# Usage: build.sh OUTPUT_FILE
set -euo pipefail
out=${1:?usage: initramfs/build.sh OUTPUT_FILE}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=/bin/busybox

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT

mkdir -p "$staging"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc}
install -m 0755 "$busybox" "$staging/bin/busybox"
# One symlink per applet, at the path busybox itself reports.
"$busybox" --list-full | while read -r applet; do
	[ -e "$staging/$applet" ] || ln -s /bin/busybox "$staging/$applet"
done
install -m 0755 "$here/init" "$staging/init"
# guest/tools, freestanding (see sys.h), so each adds ~10 KB rather than a
# static libc: the block-device benchmark that hako.init=blkbench runs
# (bench/blk.ts), and the clock and RNG setup of template clones.
tool() { # SOURCE NAME
	gcc -O2 -static -nostdlib -ffreestanding -fno-stack-protector -no-pie -Wall -Wextra -Werror -s \
		-o "$staging/bin/$2" "$here/../tools/$1"
}
tool blkbench.c hako-blkbench
tool clone-setup.c hako-clone-setup
install -m 0644 "$here/fstab" "$staging/etc/fstab"

# newc header (see Documentation/driver-api/early-userspace/buffer-format.rst)
# for an entry without data, name padded so the header+name is 4-byte aligned.
newc_entry() { # NAME MODE RDEVMAJOR RDEVMINOR
	local name=$1 namesize=$((${#1} + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		0 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0
	printf '%s\0' "$name"
	head -c $(((4 - (110 + namesize) % 4) % 4)) /dev/zero
}

{
	(cd "$staging" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible)
	# /dev/console must exist before init runs (it gets fds 0-2 from it);
	# a second archive adds the device node without needing mknod rights.
	newc_entry dev/console $((0020600)) 5 1
	newc_entry 'TRAILER!!!' 0 0 0
} >"$out"
