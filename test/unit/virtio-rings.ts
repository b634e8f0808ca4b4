// A minimal virtio driver for the device unit tests: lays out split rings in
// guest RAM (the module's memory), drives a device's virtio-mmio registers
// and builds descriptor chains, direct or through an indirect table. Generic
// over devices: the rng and block tests share it.
import type { Devices } from '../../host/wasm/devices.js';
import { createHarness, type Harness } from './device-harness.js';

/** virtio-mmio register offsets (virtio 1.x spec 4.2.2). */
export const REG = {
  MAGIC: 0x000, VERSION: 0x004, DEVICE_ID: 0x008, VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010, DEVICE_FEATURES_SEL: 0x014, DRIVER_FEATURES: 0x020, DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030, QUEUE_NUM_MAX: 0x034, QUEUE_NUM: 0x038, QUEUE_READY: 0x044, QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060, INTERRUPT_ACK: 0x064, STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080, QUEUE_DESC_HIGH: 0x084, QUEUE_DRIVER_LOW: 0x090, QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0, QUEUE_DEVICE_HIGH: 0x0a4, CONFIG_GENERATION: 0x0fc, CONFIG: 0x100,
} as const;

export const STATUS = { ACKNOWLEDGE: 1, DRIVER: 2, DRIVER_OK: 4, FEATURES_OK: 8, NEEDS_RESET: 0x40, FAILED: 0x80 } as const;
export const FEATURE = { INDIRECT_DESC: 1n << 28n, EVENT_IDX: 1n << 29n, VERSION_1: 1n << 32n } as const;
export const INTERRUPT = { VRING: 1, CONFIG: 2 } as const;
export const DESC_F = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;

/** Where a queue's three parts sit in guest RAM. */
export interface QueueLayout {
  size: number;
  desc: number;
  avail: number;
  used: number;
}

/** Descriptor table, avail and used ring packed from `addr` (avail right after the table, used 4-aligned after it). */
export function queueLayout(addr: number, size: number): QueueLayout {
  const avail = addr + 16 * size;
  const used = (avail + 6 + 2 * size + 3) & ~3;
  return { size, desc: addr, avail, used };
}

/**
 * What the driver needs of a module: its devices. A test Harness is one; the
 * benchmarks (bench/virtio.ts) pass a module with no-op callbacks instead.
 */
export interface DeviceHost {
  devices: Devices;
}

/** A queue as the driver side sees it. */
export interface Queue<H extends DeviceHost = Harness> extends QueueLayout {
  device: VirtioTestDevice<H>;
  index: number;
  /** Next descriptor addChain uses (wraps). */
  nextDesc: number;
  /** avail.idx as published. */
  availIdx: number;
  /** used entries consumed by readUsed. */
  usedSeen: number;
}

export interface VirtioTestDevice<H extends DeviceHost = Harness> {
  h: H;
  base: bigint;
  queues: Queue<H>[];
  read(offset: number): number;
  write(offset: number, value: number): void;
}

export interface Segment {
  addr: number;
  len: number;
  write: boolean;
}

export function mem(h: DeviceHost): DataView {
  return new DataView(h.devices.memory.buffer);
}

/** 32-bit register access to the device window at `base`. */
export function device<H extends DeviceHost>(h: H, base: bigint): VirtioTestDevice<H> {
  return {
    h,
    base,
    queues: [],
    read: (offset) => Number(h.devices.mmioRead(base + BigInt(offset), 4)),
    write: (offset, value) => h.devices.mmioWrite(base + BigInt(offset), 4, BigInt(value >>> 0)),
  };
}

/** The 64 feature bits the device offers. */
export function offeredFeatures(dev: VirtioTestDevice<DeviceHost>): bigint {
  dev.write(REG.DEVICE_FEATURES_SEL, 0);
  const low = BigInt(dev.read(REG.DEVICE_FEATURES));
  dev.write(REG.DEVICE_FEATURES_SEL, 1);
  return (BigInt(dev.read(REG.DEVICE_FEATURES)) << 32n) | low;
}

export function writeDriverFeatures(dev: VirtioTestDevice<DeviceHost>, features: bigint): void {
  dev.write(REG.DRIVER_FEATURES_SEL, 0);
  dev.write(REG.DRIVER_FEATURES, Number(features & 0xffff_ffffn));
  dev.write(REG.DRIVER_FEATURES_SEL, 1);
  dev.write(REG.DRIVER_FEATURES, Number(features >> 32n));
}

/** Programs queue `index` (QueueSel, QueueNum, addresses) and sets QueueReady. Zeroes its rings first. */
export function setupQueue<H extends DeviceHost>(dev: VirtioTestDevice<H>, index: number, layout: QueueLayout): Queue<H> {
  const view = new Uint8Array(dev.h.devices.memory.buffer);
  view.fill(0, layout.desc, layout.desc + 16 * layout.size);
  view.fill(0, layout.avail, layout.avail + 6 + 2 * layout.size);
  view.fill(0, layout.used, layout.used + 6 + 8 * layout.size);
  dev.write(REG.QUEUE_SEL, index);
  dev.write(REG.QUEUE_NUM, layout.size);
  const pairs: [number, number][] = [
    [REG.QUEUE_DESC_LOW, layout.desc], [REG.QUEUE_DRIVER_LOW, layout.avail], [REG.QUEUE_DEVICE_LOW, layout.used],
  ];
  for (const [low, addr] of pairs) {
    dev.write(low, addr % 2 ** 32);
    dev.write(low + 4, Math.floor(addr / 2 ** 32));
  }
  dev.write(REG.QUEUE_READY, 1);
  const queue: Queue<H> = { ...layout, device: dev, index, nextDesc: 0, availIdx: 0, usedSeen: 0 };
  dev.queues[index] = queue;
  return queue;
}

/**
 * Resets the device at `base` and brings it up the way Linux does: ACKNOWLEDGE,
 * DRIVER, features (`wanted` & offered, VERSION_1 always), FEATURES_OK, the
 * queues, DRIVER_OK. Throws if the device refuses a step.
 */
export function setupDevice<H extends DeviceHost>(h: H, base: bigint, queues: QueueLayout[], wanted: bigint = 0n): VirtioTestDevice<H> {
  const dev = device(h, base);
  dev.write(REG.STATUS, 0);
  dev.write(REG.STATUS, STATUS.ACKNOWLEDGE);
  dev.write(REG.STATUS, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
  writeDriverFeatures(dev, (offeredFeatures(dev) & wanted) | FEATURE.VERSION_1);
  dev.write(REG.STATUS, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
  if (!(dev.read(REG.STATUS) & STATUS.FEATURES_OK)) throw new Error('device refused FEATURES_OK');
  queues.forEach((layout, i) => setupQueue(dev, i, layout));
  dev.write(REG.STATUS, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK | STATUS.DRIVER_OK);
  if (dev.read(REG.STATUS) !== 0x0f) throw new Error(`device status 0x${dev.read(REG.STATUS).toString(16)} after DRIVER_OK`);
  return dev;
}

export interface Descriptor {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

/** Writes descriptor `index` of the table at `table`. */
export function writeDesc(h: DeviceHost, table: number, index: number, d: Descriptor): void {
  const m = mem(h);
  const at = table + 16 * index;
  m.setBigUint64(at, BigInt(d.addr), true);
  m.setUint32(at + 8, d.len >>> 0, true);
  m.setUint16(at + 12, d.flags, true);
  m.setUint16(at + 14, d.next, true);
}

/** Descriptors for `segments` linked in order, numbered from `first` (indices wrap at `wrap`). */
function linked(segments: Segment[], first: number, wrap: number): Descriptor[] {
  return segments.map((s, i) => ({
    addr: s.addr,
    len: s.len,
    flags: (s.write ? DESC_F.WRITE : 0) | (i + 1 < segments.length ? DESC_F.NEXT : 0),
    next: (first + i + 1) % wrap,
  }));
}

/**
 * Puts a chain of `segments` in the descriptor table (or, with `indirect`, in
 * an indirect table at that address referenced by one descriptor) and makes
 * it available. Returns its head. Does not kick.
 */
export function addChain(q: Queue<DeviceHost>, segments: Segment[], options: { indirect?: number } = {}): number {
  const h = q.device.h;
  const head = q.nextDesc;
  if (options.indirect !== undefined) {
    linked(segments, 0, segments.length).forEach((d, i) => writeDesc(h, options.indirect!, i, d));
    writeDesc(h, q.desc, head, { addr: options.indirect, len: 16 * segments.length, flags: DESC_F.INDIRECT, next: 0 });
    q.nextDesc = (head + 1) % q.size;
  } else {
    linked(segments, head, q.size).forEach((d, i) => writeDesc(h, q.desc, (head + i) % q.size, d));
    q.nextDesc = (head + segments.length) % q.size;
  }
  publish(q, [head]);
  return head;
}

/** Appends `heads` to the avail ring and publishes avail.idx. */
export function publish(q: Queue<DeviceHost>, heads: number[]): void {
  const m = mem(q.device.h);
  for (const head of heads) {
    m.setUint16(q.avail + 4 + 2 * (q.availIdx % q.size), head, true);
    q.availIdx = (q.availIdx + 1) & 0xffff;
  }
  m.setUint16(q.avail + 2, q.availIdx, true);
}

/** Kicks queue `q`: through the QueueNotify register, or through the export the host's ioeventfd calls. */
export function kick(q: Queue<DeviceHost>, via: 'mmio' | 'ioeventfd' = 'mmio', deviceIndex = 0): void {
  if (via === 'mmio') q.device.write(REG.QUEUE_NOTIFY, q.index);
  else q.device.h.devices.virtioNotify(deviceIndex, q.index);
}

export function usedIdx(q: Queue<DeviceHost>): number {
  return mem(q.device.h).getUint16(q.used + 2, true);
}

/** Used entries the device added since the last call. */
export function readUsed(q: Queue<DeviceHost>): { id: number; len: number }[] {
  const m = mem(q.device.h);
  const entries: { id: number; len: number }[] = [];
  const idx = usedIdx(q);
  for (; q.usedSeen !== idx; q.usedSeen = (q.usedSeen + 1) & 0xffff) {
    const at = q.used + 4 + 8 * (q.usedSeen % q.size);
    entries.push({ id: m.getUint32(at, true), len: m.getUint32(at + 4, true) });
  }
  return entries;
}

/** used_event (in the avail ring): with EVENT_IDX the device interrupts when used.idx passes it. */
export function setUsedEvent(q: Queue<DeviceHost>, value: number): void {
  mem(q.device.h).setUint16(q.avail + 4 + 2 * q.size, value, true);
}

/** avail_event (in the used ring): with EVENT_IDX the device wants a kick when avail.idx passes it. */
export function availEvent(q: Queue<DeviceHost>): number {
  return mem(q.device.h).getUint16(q.used + 4 + 8 * q.size, true);
}

/** avail.flags; bit 0 (NO_INTERRUPT) asks for no interrupts without EVENT_IDX. */
export function setAvailFlags(q: Queue<DeviceHost>, flags: number): void {
  mem(q.device.h).setUint16(q.avail, flags, true);
}

/** Where the tests put their first virtio device, and its interrupt line. */
export const VIRTIO_BASE = 0xd000_0000n;
export const VIRTIO_GSI = 5;

/** A fresh module with `ramBytes` of guest RAM and a virtio-rng at VIRTIO_BASE (device 0), not yet set up. */
export async function createRngHarness(ramBytes = 16 << 20): Promise<Harness> {
  const h = await createHarness();
  h.devices.setGuestRamBytes(ramBytes);
  if (h.devices.addVirtioRng(VIRTIO_BASE, VIRTIO_GSI) !== 0) throw new Error('first virtio device is not index 0');
  return h;
}
