#!/usr/bin/env bash
# Installs the Debian packages hako needs to build and test. Idempotent: when
# everything is present it only asks dpkg and returns.
set -euo pipefail

packages=(
  # native addon
  cmake g++ make python3
  # block I/O engine (io_uring)
  liburing-dev
  # guest kernel (Debian's linux-source-6.1) and initramfs
  linux-source-6.1 bc bison flex libelf-dev libssl-dev cpio xz-utils busybox-static
  # the OCI runtime the guest agent runs containers with (copied into the initramfs)
  crun
  # disk images for the virtio-blk tests and benchmark (mkfs.ext4, debugfs)
  e2fsprogs
  # zstd-compressed image layers in the unit tests (hako itself decompresses with fzstd)
  zstd
  # benchmark baseline
  qemu-system-x86 seabios
  # the benchmark probe guest (guest/probe/: as, ld)
  binutils
  # the containerd shim (host/shim/): containerd and ctr for its tests, runc as the benchmark's baseline, and the
  # task API's .proto files with the gogoproto options they import, loaded at run time
  containerd runc golang-github-containerd-containerd-dev golang-github-gogo-protobuf-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "hako setup: missing Debian packages: ${missing[*]}" >&2
  echo "hako setup: run as root, or install them with: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "hako setup: installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
