#!/bin/bash
# Build the hako guest initramfs: busybox-static + /init + guest/tools + crun
# (with its shared libraries, libsystemd stubbed) + the agent (guest/agent,
# when it has a build.sh), as an uncompressed newc cpio (decompression would
# run emulated on PVM hosts, which is slow).
# Usage: build.sh OUTPUT_FILE
#        build.sh --host-files   list the host files copied in, one per line
#                                (guest/build.sh hashes them for the cache key)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=/bin/busybox
crun=/usr/bin/crun
agent_build=$here/../agent/build.sh

# crun and every shared object it loads (the loader included), at the paths
# ldd resolves them to, which is where the loader looks for them again. With
# a directory, libraries there come first (our libsystemd.so.0 stub).
crun_files() { # [LIBRARY_DIR]
	echo "$crun"
	LD_LIBRARY_PATH=${1:-} ldd "$crun" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
}

if [ "${1:-}" = --host-files ]; then
	echo "$busybox"
	crun_files # and the real libsystemd's dependencies, which are not copied: harmless
	exit
fi
out=${1:?usage: initramfs/build.sh OUTPUT_FILE | --host-files}
[ -x "$crun" ] || { echo "initramfs/build.sh: $crun not found (apt-get install crun)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
staging=$work/root stub=$work/stub agent_out=$work/agent
mkdir "$staging" "$stub" "$agent_out"

mkdir -p "$staging"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run/hako-root,root,etc,mnt}
chmod 1777 "$staging/tmp"
install -m 0755 "$busybox" "$staging/bin/busybox"
# One symlink per applet, at the path busybox itself reports.
"$busybox" --list-full | while read -r applet; do
	[ -e "$staging/$applet" ] || ln -s /bin/busybox "$staging/$applet"
done
install -m 0755 "$here/init" "$staging/init"
install -m 0644 "$here/fstab" "$staging/etc/fstab"
# Who crun and the agent resolve user and group names against.
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$staging/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$staging/etc/group"

# crun with a stub libsystemd.so.0 (see libsystemd-stub.c) instead of the
# real one and the libraries only that one needs.
gcc -shared -fPIC -O2 -nostdlib -ffreestanding -Wall -Wextra -Werror -s -Wl,-soname,libsystemd.so.0 \
	-Wl,--version-script="$here/libsystemd-stub.map" -o "$stub/libsystemd.so.0" "$here/libsystemd-stub.c"
crun_files "$stub" | while read -r file; do
	case $file in
	"$stub"/*) install -D -m 0755 "$file" "$staging/lib/x86_64-linux-gnu/${file##*/}" ;;
	*) install -D -m 0755 "$file" "$staging$file" ;;
	esac
done

# guest/tools, freestanding (see sys.h), so each adds ~10-30 KB rather than a
# static libc: the block-device benchmark that hako.init=blkbench runs
# (bench/blk.ts), the clock and RNG setup of template clones, the vsock
# test and benchmark client, and the virtio-fs test and benchmark.
tool() { # SOURCE NAME
	gcc -O2 -static -nostdlib -ffreestanding -fno-stack-protector -no-pie -Wall -Wextra -Werror -s \
		-o "$staging/bin/$2" "$here/../tools/$1"
}
tool blkbench.c hako-blkbench
tool clone-setup.c hako-clone-setup
tool vsockperf.c hako-vsockperf
tool fstest.c hako-fstest
tool fsbench.c hako-fsbench

if [ -x "$agent_build" ]; then
	"$agent_build" "$agent_out" >&2
	install -m 0755 "$agent_out/hako-agent" "$staging/sbin/hako-agent"
fi

# newc header (see Documentation/driver-api/early-userspace/buffer-format.rst)
# for an entry without data, name padded so the header+name is 4-byte aligned.
newc_entry() { # NAME MODE RDEVMAJOR RDEVMINOR
	local name=$1 namesize=$((${#1} + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		0 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0
	printf '%s\0' "$name"
	head -c $(((4 - (110 + namesize) % 4) % 4)) /dev/zero
}

# Fixed times: the same inputs give the same bytes (and VM template keys).
find "$staging" -exec touch -h -d @0 {} +
{
	(cd "$staging" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible)
	# /dev/console must exist before init runs (it gets fds 0-2 from it);
	# a second archive adds the device node without needing mknod rights,
	# and the FIFO through which the agent tells init it is listening.
	newc_entry dev/console $((0020600)) 5 1
	newc_entry run/hako-agent.ready $((0010600)) 0 0
	newc_entry 'TRAILER!!!' 0 0 0
} >"$out"
