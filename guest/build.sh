#!/bin/bash
# Build (or find in the cache) the hako guest kernel, initramfs and default
# container root file system (a directory; host/image/ turns it into an image).
# Progress goes to stderr; the last line of stdout is one JSON object:
#   {"vmlinux":..,"bzImage":..,"initrd":..,"rootfs":..,"cmdline":..,"cmdlinePvm":..,"kernelRelease":..}
# Outputs live outside the checkout, in
#   ${HAKO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hako}/{kernel,initramfs,rootfs}/<hash>/
# where <hash> covers every input of that artifact. Entries are built in a
# temporary directory and renamed into place, so a killed build leaves none.
set -euo pipefail
guest=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${HAKO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hako}

# Default kernel command line for hako (see README.md for each option).
# cmdlinePvm is appended to cmdline on PVM hosts only.
cmdline_base="console=ttyS0 quiet reboot=k panic=-1 hako.exit_port=0xf4 io_delay=none tsc=reliable"
glibc_no_avx="-AVX,-AVX2,-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-AVX512ER,-AVX512PF,-FMA,-FMA4"
cmdline_pvm="mitigations=off GLIBC_TUNABLES=glibc.cpu.hwcaps=$glibc_no_avx hako.pvm=1"

die() {
	echo "guest/build.sh: $*" >&2
	exit 1
}

require_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	((${#missing[@]} == 0)) || die "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
}

pkg_version() { dpkg-query -W -f='${Version}' "$1"; }

# Hash of every file under DIR (names and contents) plus extra strings.
inputs_hash() { # DIR EXTRA...
	local dir=$1
	shift
	{
		(cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		printf '%s\n' "$@"
	} | sha256sum | cut -c1-16
}

# ensure KIND HASH BUILDER: print the cache entry, building it with
# "BUILDER TMPDIR" under a lock if it does not exist yet.
ensure() {
	local kind=$1 hash=$2 builder=$3
	local dir=$cache/$kind final=$cache/$kind/$hash
	if [ ! -d "$final" ]; then
		mkdir -p "$dir"
		exec {lock}>"$dir/lock"
		flock "$lock"
		if [ ! -d "$final" ]; then
			rm -rf "$dir"/.tmp-* # left by killed builds; we hold the lock
			local tmp=$dir/.tmp-$hash-$$
			mkdir "$tmp"
			if ! "$builder" "$tmp" >&2; then
				rm -rf "$tmp"
				die "$kind build failed"
			fi
			mv -T "$tmp" "$final"
		fi
		flock -u "$lock"
		exec {lock}>&-
	fi
	echo "$final"
}

build_initramfs() { "$guest/initramfs/build.sh" "$1/initrd.cpio"; }
build_rootfs() { "$guest/rootfs/build.sh" "$1/rootfs"; }

json_string() {
	local s=${1//\\/\\\\}
	printf '"%s"' "${s//\"/\\\"}"
}

require_packages linux-source-6.1 busybox-static crun bc bison flex libelf-dev libssl-dev cpio xz-utils patch make gcc g++ binutils
[ -r /usr/src/linux-source-6.1.tar.xz ] || die "/usr/src/linux-source-6.1.tar.xz not found (reinstall linux-source-6.1)"

kernel_hash=$(inputs_hash "$guest/kernel" "linux-source-6.1 $(pkg_version linux-source-6.1)" "gcc $(pkg_version gcc)" "binutils $(pkg_version binutils)")
# The host files the initramfs copies (busybox, crun and its libraries) by content.
host_files=$("$guest/initramfs/build.sh" --host-files | xargs sha256sum)
initramfs_hash=$(inputs_hash "$guest/initramfs" "tools $(inputs_hash "$guest/tools")" "agent $(inputs_hash "$guest/agent")" \
	"$host_files" "gcc $(pkg_version gcc)" "g++ $(pkg_version g++)" "cpio $(pkg_version cpio)")
rootfs_hash=$(inputs_hash "$guest/rootfs" "busybox-static $(pkg_version busybox-static)")

kernel=$(ensure kernel "$kernel_hash" "$guest/kernel/build.sh")
initramfs=$(ensure initramfs "$initramfs_hash" build_initramfs)
rootfs=$(ensure rootfs "$rootfs_hash" build_rootfs)

printf '{"vmlinux":%s,"bzImage":%s,"initrd":%s,"rootfs":%s,"cmdline":%s,"cmdlinePvm":%s,"kernelRelease":%s}\n' \
	"$(json_string "$kernel/vmlinux")" "$(json_string "$kernel/bzImage")" \
	"$(json_string "$initramfs/initrd.cpio")" "$(json_string "$rootfs/rootfs")" "$(json_string "$cmdline_base")" \
	"$(json_string "$cmdline_pvm")" "$(json_string "$(cat "$kernel/release")")"
