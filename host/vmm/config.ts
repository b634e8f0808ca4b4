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
}

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
  const count = virtioDevices(cfg).length;
  if (count > MAX_VIRTIO_DEVICES) bad(`at most ${MAX_VIRTIO_DEVICES} virtio devices (disks, rng and vsock), got ${count}`);
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
