#!/bin/bash
# Assemble and link the benchmark probe guest (or find it in the cache).
# The last line of stdout is the path of the ELF:
#   ${HAKO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hako}/probe/<hash>/probe.elf
# where <hash> covers every file here and the binutils version. Takes
# milliseconds; a killed build leaves no entry (the ELF is renamed into place).
set -euo pipefail
probe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${HAKO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hako}

die() {
	echo "guest/probe/build.sh: $*" >&2
	exit 1
}

command -v as >/dev/null && command -v ld >/dev/null || die "as and ld not found (apt-get install binutils)"
hash=$({
	(cd "$probe" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	as --version | head -n 1
	ld --version | head -n 1
} | sha256sum | cut -c1-16)
out=$cache/probe/$hash
if [ ! -f "$out/probe.elf" ]; then
	mkdir -p "$out"
	tmp=$(mktemp -d "$out/.tmp-XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# boot.o first: the PVH entry is where the image starts.
	objects=()
	for src in boot serial virtio main; do
		as --64 -I "$probe" -o "$tmp/$src.o" "$probe/$src.s"
		objects+=("$tmp/$src.o")
	done
	ld -m elf_x86_64 -nostdlib -static --no-warn-rwx-segments -T "$probe/probe.ld" -o "$tmp/probe.elf" "${objects[@]}"
	mv -f "$tmp/probe.elf" "$out/probe.elf"
fi
echo "$out/probe.elf"
