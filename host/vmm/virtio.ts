// The VM's virtio-mmio devices, wired: each device gets a register window
// and an interrupt line (announced to the guest with virtio_mmio.device=),
// an ioeventfd per queue whose kicks reach the Wasm device without a vCPU
// exit, an irqfd for its interrupts, for block devices the open image
// files behind the native I/O engine, for vsock its Unix sockets, and for
// virtio-fs the shared directories.
import { HakoError } from '../errors.js';
import { VIRTIO_GSIS, VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE } from '../boot/layout.js';
import { openDisk, type DiskConfig, type OpenDisk } from '../block/disk.js';
import { isKvmError, type FdWatch, type IoEngine, type NativeAddon, type NativeVm } from '../native.js';
import type { Devices, FsCallbacks, VsockCallbacks } from '../wasm/devices.js';
import { VsockBackend } from '../vsock/backend.js';
import { FsShares } from '../virtiofs/backend.js';
import type { FsCacheMode } from './config.js';

/**
 * One virtio device of a VM, in the order the guest sees them (disks: /dev/vda, vdb, ...). A vsock
 * device without a socket path has no host side: host clients cannot reach it and the guest's connects
 * to the host are refused (a restored snapshot given no RestoreOptions.vsock). A virtio-fs device without
 * a path has no directory behind it: the guest's requests fail with ENODEV (a restored snapshot given no
 * RestoreOptions.shares).
 */
export type VirtioDeviceConfig =
  | { kind: 'rng' }
  | ({ kind: 'block' } & DiskConfig)
  | { kind: 'vsock'; cid: number; socketPath?: string }
  | { kind: 'fs'; tag: string; readOnly: boolean; cache: FsCacheMode; path?: string };

/** virtio-mmio QueueNotify: the register a driver writes a queue index to. */
const QUEUE_NOTIFY_OFFSET = 0x50;
/**
 * Queues per device kind (virtio-rng: requestq; virtio-blk: one request queue; virtio-vsock: rx, tx, event;
 * virtio-fs: hiprio and one request queue).
 */
const QUEUE_COUNT: Record<VirtioDeviceConfig['kind'], number> = { rng: 1, block: 1, vsock: 3, fs: 2 };

export interface VirtioSlot {
  base: number;
  gsi: number;
}

export const MAX_VIRTIO_DEVICES = VIRTIO_GSIS.length;

/** Where device `index` sits: windows back to back from VIRTIO_MMIO_BASE, one free IOAPIC pin each. */
export function virtioSlot(index: number): VirtioSlot {
  const gsi = VIRTIO_GSIS[index];
  if (gsi === undefined) throw new HakoError('INVALID_ARGUMENT', `at most ${MAX_VIRTIO_DEVICES} virtio devices per VM, got ${index + 1}`);
  return { base: VIRTIO_MMIO_BASE + index * VIRTIO_MMIO_SIZE, gsi };
}

/** The kernel command-line words that announce `configs` to the guest's virtio-mmio driver. */
export function virtioCmdline(configs: readonly VirtioDeviceConfig[]): string[] {
  return configs.map((_, i) => {
    const { base, gsi } = virtioSlot(i);
    return `virtio_mmio.device=${VIRTIO_MMIO_SIZE}@0x${base.toString(16)}:${gsi}`;
  });
}

/** Host-side resources of the VM's virtio devices; the Vm calls drain() then close() when it ends. */
export class VirtioDevices {
  private readonly watches: FdWatch[] = [];
  private readonly irqfds = new Map<number, number>();
  private readonly disks: OpenDisk[] = [];
  private engine: IoEngine | undefined;
  private vsockDevice: number | undefined;
  private vsockBackend: VsockBackend | undefined;
  private fsShares: FsShares | undefined;
  /** Queues to kick once the vCPUs run, so requests pending in a restored snapshot are served. */
  private readonly queues: [device: number, queue: number][] = [];

  private constructor(private readonly kvmVm: NativeVm, private readonly devices: Devices) {}

  /**
   * Adds `configs` to the device models and KVM. Opens every disk and shared
   * directory first, so a bad image or path is reported before anything else is set up.
   */
  static attach(addon: NativeAddon, kvmVm: NativeVm, devices: Devices, configs: readonly VirtioDeviceConfig[],
    guestBytes: number, onDeviceFailure: (error: Error) => void): VirtioDevices {
    const self = new VirtioDevices(kvmVm, devices);
    try {
      for (const config of configs) if (config.kind === 'block') self.disks.push(openDisk(config));
      // The device model knows a share by its place among the VM's virtio-fs devices: stable across a snapshot.
      const shares = configs.filter((c): c is Extract<VirtioDeviceConfig, { kind: 'fs' }> => c.kind === 'fs');
      if (shares.length > 0) {
        self.fsShares = new FsShares(addon, () => devices.memory.buffer);
        shares.forEach((c, id) => { if (c.path !== undefined) self.fsShares!.open(id, c.path, c.readOnly); });
      }
      if (self.disks.length > 0) {
        self.engine = new addon.IoEngine(devices.memory, guestBytes, (ids, results) => self.complete(ids, results));
      }
      let disk = 0;
      let share = 0;
      configs.forEach((config, index) => {
        const { base, gsi } = virtioSlot(index);
        const irqfd = kvmVm.createEventfd();
        kvmVm.addIrqfd(irqfd, gsi);
        self.irqfds.set(gsi, irqfd);
        let device: number;
        if (config.kind === 'rng') {
          device = devices.addVirtioRng(BigInt(base), gsi);
        } else if (config.kind === 'vsock') {
          device = self.attachVsock(addon, config, base, gsi, onDeviceFailure);
        } else if (config.kind === 'fs') {
          device = devices.addVirtioFs(BigInt(base), gsi, config.tag, share++, config.readOnly, config.cache);
        } else {
          const open = self.disks[disk++]!;
          const file = self.engine!.attach(open.fd);
          device = devices.addVirtioBlock(BigInt(base), gsi, file, open.sectors, open.config.readOnly);
        }
        for (let queue = 0; queue < QUEUE_COUNT[config.kind]; queue++) {
          const fd = kvmVm.createEventfd();
          kvmVm.addIoeventfd(fd, base + QUEUE_NOTIFY_OFFSET, 4, false, queue);
          self.watches.push(addon.watchFd(fd, () => devices.virtioNotify(device, queue)));
          self.queues.push([device, queue]);
        }
      });
      return self;
    } catch (e) {
      self.close();
      throw e;
    }
  }

  /** What the vsock device model calls for its host sockets; undefined without a vsock device with a socket path. */
  get vsock(): VsockCallbacks | undefined {
    return this.vsockBackend?.callbacks;
  }

  /** What the virtio-fs device models call for their shared directories; undefined without virtio-fs devices. */
  get fs(): FsCallbacks | undefined {
    return this.fsShares?.callbacks;
  }

  /**
   * After a restore: drops every vsock connection the snapshot held (their host sockets are not in it),
   * gives the guest CID `cid` and tells it so with a transport reset event.
   */
  resetVsock(cid: number): void {
    if (this.vsockDevice !== undefined) this.devices.vsockTransportReset(this.vsockDevice, BigInt(cid));
  }

  /** The device models raised interrupt `gsi` (edge): inject it through its irqfd. */
  pulse(gsi: number): void {
    const fd = this.irqfds.get(gsi);
    if (fd !== undefined) this.kvmVm.signalEventfd(fd);
  }

  /** The block devices handed a batch of I/O records (assembly/virtio/io.ts) to the host. */
  submit(records: number, count: number): void {
    if (!this.engine) throw new Error('the device models submitted block I/O, but this VM has no disks');
    this.engine.submit(records, count);
  }

  /** Serves requests a restored guest left in its rings before the snapshot. */
  kickAll(): void {
    for (const [device, queue] of this.queues) this.devices.virtioNotify(device, queue);
  }

  /** Waits for every block request in flight and completes it into guest RAM (before a snapshot or close). */
  drain(): void {
    this.engine?.drain();
  }

  /** Drains, then releases watches, the engine, image files, vsock sockets and shared directories (idempotent). */
  close(): void {
    for (const watch of this.watches.splice(0)) watch.close();
    this.vsockBackend?.close();
    this.fsShares?.close();
    this.engine?.close();
    this.engine = undefined;
    for (const disk of this.disks.splice(0)) disk.close();
  }

  private attachVsock(addon: NativeAddon, config: { cid: number; socketPath?: string }, base: number, gsi: number,
    onDeviceFailure: (error: Error) => void): number {
    const { devices } = this;
    const device = devices.addVirtioVsock(BigInt(base), gsi, BigInt(config.cid));
    this.vsockDevice = device;
    if (config.socketPath === undefined) return device;
    try {
      this.vsockBackend = VsockBackend.listen(addon, config.socketPath, {
        memory: () => devices.memory.buffer,
        hostConnect: (handle, guestPort) => devices.vsockHostConnect(device, handle, guestPort),
        ready: (handle, readable, writable) => devices.vsockReady(device, handle, readable, writable),
        fail: onDeviceFailure,
      });
    } catch (e) {
      if (!isKvmError(e)) throw e;
      throw new HakoError('INVALID_ARGUMENT', `cannot listen on vsock socket ${config.socketPath}: ${e.message}`, { cause: e });
    }
    return device;
  }

  private complete(ids: Uint32Array, results: Int32Array): void {
    for (let i = 0; i < ids.length; i++) this.devices.ioComplete(ids[i]!, results[i]!);
    this.devices.ioCompleteEnd();
  }
}
