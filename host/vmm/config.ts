// The shape of one VM and the checks every caller (CLI or Node API) gets.
import { HakoError } from '../errors.js';
import type { CpuTemplateName } from '../cpu/template.js';
import { CPU_TEMPLATES } from '../cpu/template.js';
import type { DiskConfig } from '../block/disk.js';
import { MAX_VIRTIO_DEVICES, type VirtioDeviceConfig } from './virtio.js';

export const MIN_MEMORY_MIB = 64;
export const MAX_MEMORY_MIB = 4096;

export interface VmConfig {
  kernel: string;
  initrd?: string;
  /** The kernel command line; hako appends the options its platform needs (see platformCmdline). */
  cmdline: string;
  vcpus: number;
  memoryMiB: number;
  cpuTemplate: CpuTemplateName;
  /** virtio-blk disks, /dev/vda first (default none). */
  disks?: DiskConfig[];
  /** A virtio-rng device feeding the guest from the host's getrandom (default true). */
  rng?: boolean;
  /** A virtio-vsock device, hybrid vsock over Unix sockets (host/vsock/backend.ts); default none. */
  vsock?: VsockConfig;
  /** Host directories shared with the guest, one virtio-fs device each (host/virtiofs/); default none. */
  shares?: ShareConfig[];
}

/** How long the guest may cache what it learnt of a share (virtio-fs): see FS_CACHE_MODES. */
export type FsCacheMode = 'none' | 'auto' | 'always';
/**
 * none: every lookup, attribute and read goes to the host (the guest sees host changes at once);
 * auto: names and attributes are trusted for 1 s, cached file data is dropped when a file is opened;
 * always: names and attributes are trusted for a day and file data kept: for directories only this
 * guest changes.
 */
export const FS_CACHE_MODES: readonly FsCacheMode[] = ['none', 'auto', 'always'];

export interface ShareConfig {
  /** The host directory. */
  path: string;
  /** What the guest mounts: `mount -t virtiofs <tag> <dir>`; 1 to 36 bytes of UTF-8, unique per VM. */
  tag: string;
  /** The guest's writes fail with EROFS (default false). */
  readOnly?: boolean;
  /** Default 'auto'. */
  cache?: FsCacheMode;
}

/** virtio-fs config space: u8 tag[36]. */
export const MAX_FS_TAG_BYTES = 36;

export interface VsockConfig {
  /**
   * The Unix socket the VM listens on for host clients ("CONNECT <port>\n", host/vsock/client.ts);
   * a guest connecting to host port P reaches the socket "<socketPath>_P".
   */
  socketPath: string;
  /** The guest's context ID, 3 to 4294967294 (0 to 2 are reserved; the host is 2). */
  cid: number;
}

/** The smallest and largest guest CID: 0-2 are reserved (2 is the host), and 2^32 - 1 is VMADDR_CID_ANY. */
export const MIN_GUEST_CID = 3;
export const MAX_GUEST_CID = 0xfffffffe;
/** sun_path holds 108 bytes, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;

/** The VM's virtio devices in guest order: the disks first, so the first is /dev/vda whatever else is attached. */
export function virtioDevices(cfg: VmConfig): VirtioDeviceConfig[] {
  const devices: VirtioDeviceConfig[] = (cfg.disks ?? []).map((d) => ({ kind: 'block', path: d.path, readOnly: d.readOnly }));
  if (cfg.rng ?? true) devices.push({ kind: 'rng' });
  if (cfg.vsock) devices.push({ kind: 'vsock', cid: cfg.vsock.cid, socketPath: cfg.vsock.socketPath });
  for (const share of cfg.shares ?? []) {
    devices.push({ kind: 'fs', path: share.path, tag: share.tag, readOnly: share.readOnly ?? false, cache: share.cache ?? 'auto' });
  }
  return devices;
}

const bad = (what: string): never => { throw new HakoError('INVALID_ARGUMENT', what); };

/** Checks what needs no KVM; validateVcpuLimit adds the host's limit. */
export function validateVmConfig(cfg: VmConfig): void {
  if (!Number.isInteger(cfg.vcpus) || cfg.vcpus < 1) bad(`vcpus must be a whole number of at least 1, got ${cfg.vcpus}`);
  if (!Number.isInteger(cfg.memoryMiB) || cfg.memoryMiB < MIN_MEMORY_MIB || cfg.memoryMiB > MAX_MEMORY_MIB) {
    bad(`memory must be an integer number of MiB from ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB}, got ${cfg.memoryMiB}`);
  }
  if (!CPU_TEMPLATES.includes(cfg.cpuTemplate)) {
    bad(`cpu template must be one of ${CPU_TEMPLATES.join(', ')}, got ${JSON.stringify(cfg.cpuTemplate)}`);
  }
  if (cfg.cmdline.includes('\0')) bad('kernel command line must not contain NUL bytes');
  if (cfg.vsock) validateVsockConfig(cfg.vsock);
  validateShares(cfg.shares ?? []);
  const count = virtioDevices(cfg).length;
  if (count > MAX_VIRTIO_DEVICES) bad(`at most ${MAX_VIRTIO_DEVICES} virtio devices (disks, rng, vsock and shares), got ${count}`);
}

/** Checks shared directories (VmConfig.shares, RestoreOptions.shares): paths, tags (unique) and cache modes. */
export function validateShares(shares: readonly ShareConfig[]): void {
  const tags = new Set<string>();
  for (const { path, tag, readOnly, cache } of shares) {
    if (typeof path !== 'string' || path === '' || path.includes('\0')) {
      bad(`shared directory path must be a non-empty path without NUL bytes, got ${JSON.stringify(path)}`);
    }
    const bytes = typeof tag === 'string' ? Buffer.byteLength(tag) : 0;
    if (bytes === 0 || bytes > MAX_FS_TAG_BYTES || tag.includes('\0')) {
      bad(`share tag must be 1 to ${MAX_FS_TAG_BYTES} bytes of UTF-8 without NUL bytes, got ${JSON.stringify(tag)} for ${path}`);
    }
    if (tags.has(tag)) bad(`share tag ${JSON.stringify(tag)} is used twice; each shared directory needs its own`);
    tags.add(tag);
    if (readOnly !== undefined && typeof readOnly !== 'boolean') bad(`share ${tag}: readOnly must be a boolean, got ${JSON.stringify(readOnly)}`);
    if (cache !== undefined && !FS_CACHE_MODES.includes(cache)) {
      bad(`share ${tag}: cache must be one of ${FS_CACHE_MODES.join(', ')}, got ${JSON.stringify(cache)}`);
    }
  }
}

/** Checks a vsock device's CID and socket path (VmConfig.vsock, RestoreOptions.vsock). */
export function validateVsockConfig(vsock: VsockConfig): void {
  const { cid, socketPath } = vsock;
  if (!Number.isInteger(cid) || cid < MIN_GUEST_CID || cid > MAX_GUEST_CID) {
    bad(`vsock cid must be an integer from ${MIN_GUEST_CID} to ${MAX_GUEST_CID} (0-2 are reserved; the host is 2), got ${cid}`);
  }
  if (typeof socketPath !== 'string' || socketPath === '' || socketPath.includes('\0')) {
    bad(`vsock socket path must be a non-empty path without NUL bytes, got ${JSON.stringify(socketPath)}`);
  }
  const bytes = Buffer.byteLength(socketPath);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    bad(`vsock socket path must be at most ${MAX_SOCKET_PATH_BYTES} bytes (a Unix socket address), got ${bytes}: ${socketPath}`);
  }
}

export function validateVcpuLimit(vcpus: number, maxVcpus: number): void {
  if (vcpus > maxVcpus) bad(`vcpus must be at most ${maxVcpus} (this host's KVM limit), got ${vcpus}`);
}
