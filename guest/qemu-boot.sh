#!/bin/bash
# Boot the guest built by guest/build.sh under QEMU microvm (KVM), as a
# reference for the hako VMM and to measure boot time. Serial output goes to
# stdout, each line prefixed with the wall time since QEMU started.
# Exits with QEMU's status: 1 = guest powered off, 3 = guest panicked
# (isa-debug-exit on the hako.exit_port), 0 = reset/other stop.
# --share DIR exports DIR through QEMU's virtiofsd as the virtio-fs tag
# hako-shared (a reference for hako's device; e.g. --append hako.init=fstest).
# Usage: qemu-boot.sh [--smp N] [--mem MiB] [--bzimage] [--cmdline STRING]
#                     [--append STRING] [--share DIR] [-- extra qemu args]
set -euo pipefail
guest=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
smp=2 mem=256 kernel_key=vmlinux cmdline= append= share=
while (($#)); do
	case $1 in
	--smp) smp=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--bzimage) kernel_key=bzImage; shift ;;
	--cmdline) cmdline=$2; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--share) share=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "qemu-boot.sh: unknown option '$1'" >&2; exit 2 ;;
	esac
done

json=$("$guest/build.sh" | tail -n 1)
field() { node -e 'process.stdout.write(JSON.parse(process.argv[1])[process.argv[2]])' "$json" "$1"; }
kernel=$(field "$kernel_key")
initrd=$(field initrd)
cmdline="${cmdline:-$(field cmdline)}${append:+ $append}"
echo "qemu-boot: $kernel_key $kernel, $smp cpus, $mem MiB, cmdline: $cmdline" >&2

# virtio-fs: vhost-user needs guest RAM in shared memory and a virtio 1.x
# (non-legacy) transport; QEMU adds the virtio_mmio.device= entry to the
# command line itself (auto-kernel-cmdline).
machine=microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,pic=on,acpi=off,auto-kernel-cmdline=off
share_args=()
if [ -n "$share" ]; then
	socket=$(mktemp -u /tmp/qemu-boot-virtiofs.XXXXXX)
	[ -d "$share" ] || { echo "qemu-boot.sh: --share '$share' is not a directory" >&2; exit 2; }
	/usr/lib/qemu/virtiofsd --socket-path="$socket" -o source="$share",cache=none,xattr,sandbox=chroot &
	virtiofsd=$!
	trap 'kill "$virtiofsd" 2>/dev/null; rm -f "$socket"' EXIT
	while [ ! -S "$socket" ]; do sleep 0.1; done
	machine=${machine/auto-kernel-cmdline=off/auto-kernel-cmdline=on},memory-backend=mem
	share_args=(-global virtio-mmio.force-legacy=false -object "memory-backend-memfd,id=mem,size=${mem}M,share=on" -chardev "socket,id=fs,path=$socket"
		-device vhost-user-fs-device,chardev=fs,tag=hako-shared)
fi

start=$EPOCHREALTIME
set +e
qemu-system-x86_64 \
	-M "$machine" \
	-enable-kvm -cpu host,-arch-capabilities -m "$mem" -smp "$smp" "${share_args[@]}" \
	-nodefaults -no-user-config -nographic -serial stdio -no-reboot \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	-kernel "$kernel" -initrd "$initrd" -append "$cmdline" "$@" |
	while IFS= read -r line; do
		now=$EPOCHREALTIME
		printf '[%8.3f] %s\n' "$(bc <<<"$now - $start")" "${line%$'\r'}"
	done
status=${PIPESTATUS[0]}
echo "qemu-boot: qemu exited with $status after $(bc <<<"$EPOCHREALTIME - $start") s" >&2
exit "$status"
