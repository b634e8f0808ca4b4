#!/bin/bash
# Build the hako guest kernel from Debian's linux-source-6.1 into OUTDIR:
# vmlinux (PVH entry), bzImage, config, System.map, release, objects.
# OUTDIR should be a fresh directory; the caller makes it visible atomically.
# Progress goes to stderr every 20 s.
# Usage: build.sh OUTDIR
set -euo pipefail
out=${1:?usage: kernel/build.sh OUTDIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tarball=/usr/src/linux-source-6.1.tar.xz

src=$out/src
obj=$out/obj
mkdir -p "$src" "$obj"
echo "kernel: extracting $tarball" >&2
tar -xf "$tarball" -C "$src" --strip-components=1

for p in "$here"/patches/*.patch; do
	[ -e "$p" ] || continue
	echo "kernel: applying $(basename "$p")" >&2
	patch -d "$src" -p1 --batch --forward --quiet <"$p"
done

# gcc expands memset/memcpy of unknown size in cold (__init) code as
# byte-wise rep stosb/movsb, which PVM hosts emulate one byte per step: ask for
# 8-byte steps instead (about 1 s less boot time there, harmless elsewhere).
kmake() {
	make -C "$src" O="$obj" ARCH=x86_64 KBUILD_BUILD_USER=hako KBUILD_BUILD_HOST=hako \
		KCFLAGS=-mstringop-strategy=rep_8byte "$@"
}

# allnoconfig with the fragment's values fixed, then check nothing was dropped.
(cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -n -O "$obj" "$here/hako.config") >"$out/config.log" 2>&1 ||
	{ cat "$out/config.log" >&2; exit 1; }
kmake -s olddefconfig
"$here/check-config.sh" "$here/hako.config" "$obj/.config"

# Object count of an earlier build (a sibling cache entry) as the progress total.
total=$(cat "$out"/../*/objects 2>/dev/null | tail -n 1 || true)
start=$SECONDS
progress() {
	while sleep 20; do
		n=$(find "$obj" -name '*.o' | wc -l)
		echo "kernel: ${n}${total:+/~$total} objects, $((SECONDS - start)) s" >&2
	done
}
progress &
progress_pid=$!
trap 'kill "$progress_pid" 2>/dev/null || true' EXIT

jobs=$(nproc)
echo "kernel: make -j$jobs vmlinux bzImage (log: $out/build.log)" >&2
if ! kmake -j"$jobs" vmlinux bzImage >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	echo "kernel: build failed (last 40 lines above)" >&2
	exit 1
fi
kill "$progress_pid" 2>/dev/null || true

cp "$obj/vmlinux" "$obj/arch/x86/boot/bzImage" "$obj/System.map" "$out/"
cp "$obj/.config" "$out/config"
kmake -s kernelrelease >"$out/release"
find "$obj" -name '*.o' | wc -l >"$out/objects"
rm -rf "$src" "$obj"
echo "kernel: built $(cat "$out/release") in $((SECONDS - start)) s" >&2
