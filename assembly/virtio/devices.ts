// The VM's virtio devices, in the order the host added them (the index the
// exports take), each behind a virtio-mmio window on the MMIO bus. The host
// adds them all before the guest runs; machine_state.ts saves one section each.

import { mmio } from '../machine';
import { VirtioDevice } from './device';
import { VIRTIO_MMIO_WINDOW_SIZE, VirtioMmio } from './mmio';
import { recordDevice, recordSlot, VirtioBlock } from './block/device';
import { TAG_SIZE, VirtioFs } from './fs/device';
import { CACHE_ALWAYS } from './fs/server';
import { VirtioRng } from './rng/device';
import { isValidGuestCid, VirtioVsock } from './vsock/device';

/** vsockHostConnect on an index that is not a vsock device. */
const ENODEV: i32 = 19;

/** Snapshot section tags hold the index as one printable character, '0' + index. */
export const MAX_VIRTIO_DEVICES: i32 = 64;

export const virtioDevices: Array<VirtioMmio> = [];

/** Puts `device` on the MMIO bus at `base` with interrupt line `gsi`; returns its index. Aborts on a wiring bug. */
export function attachVirtioDevice(device: VirtioDevice, base: u64, gsi: u32): u32 {
  if (virtioDevices.length >= MAX_VIRTIO_DEVICES) throw new Error('too many virtio devices');
  const transport = new VirtioMmio(device, gsi);
  mmio.register(base, VIRTIO_MMIO_WINDOW_SIZE, transport);
  virtioDevices.push(transport);
  return <u32>(virtioDevices.length - 1);
}

/** Adds a virtio-rng device; returns its index. */
export function addVirtioRng(base: u64, gsi: u32): u32 {
  return attachVirtioDevice(new VirtioRng(), base, gsi);
}

/** A kick of queue `queue` of device `device` through its ioeventfd; same effect as a QueueNotify write. */
export function virtioNotify(device: u32, queue: u32): void {
  if (device < <u32>virtioDevices.length) virtioDevices[device].notify(queue);
}

/** The host restored the VM and is about to run it: devices raise the interrupts their restore deferred. */
export function virtioResumed(): void {
  for (let i = 0; i < virtioDevices.length; i++) virtioDevices[i].device.resumed();
}

/** The QueueError (or device error) that put device `device` into DEVICE_NEEDS_RESET, 0 if none; for the host's logs. */
export function virtioFailure(device: u32): u32 {
  return device < <u32>virtioDevices.length ? virtioDevices[device].device.failure : 0;
}

/**
 * Adds a virtio-blk device for host image file `file` of `capacitySectors`
 * 512-byte sectors (its GET_ID serial is "hako-disk-<file>"); returns its index.
 */
export function addVirtioBlock(base: u64, gsi: u32, file: u32, capacitySectors: u64, readOnly: bool): u32 {
  if (file > 0xffff) throw new Error('virtio-blk file index exceeds 16 bits');
  const index = <u32>virtioDevices.length;
  const added = attachVirtioDevice(new VirtioBlock(index, <u16>file, capacitySectors, readOnly), base, gsi);
  assert(added == index);
  return added;
}

/** virtio-blk device `index`, or null if there is no such device or it is of another kind. */
function blockDevice(index: u32): VirtioBlock | null {
  if (index >= <u32>virtioDevices.length) return null;
  const device = virtioDevices[index].device;
  return device instanceof VirtioBlock ? changetype<VirtioBlock>(device) : null;
}

/** The host finished I/O record `id` (virtio/io.ts) with `result` (bytes or -errno); unknown ids are ignored. */
export function ioComplete(id: u32, result: i32): void {
  const block = blockDevice(recordDevice(id));
  if (block !== null) block.complete(recordSlot(id), result);
}

/** After a batch of ioComplete calls: raises the interrupts they earned and serves requests that waited for a slot. */
export function ioCompleteEnd(): void {
  for (let i = 0; i < virtioDevices.length; i++) {
    const block = blockDevice(<u32>i);
    if (block !== null) block.completeEnd();
  }
}

/** I/O records submitted and not yet completed, over all block devices; the host drains to 0 before a snapshot. */
export function ioInFlight(): u32 {
  let count: u32 = 0;
  for (let i = 0; i < virtioDevices.length; i++) {
    const block = blockDevice(<u32>i);
    if (block !== null) count += block.ioInFlight();
  }
  return count;
}

/** Aborts on a CID a guest cannot have (a wiring bug). */
function checkGuestCid(guestCid: u64): void {
  if (!isValidGuestCid(guestCid)) {
    const cid = guestCid.toString();
    throw new Error('virtio-vsock guest CID ' + cid + ' is reserved or not 32-bit; expected 3 to 4294967294');
  }
}

/** Adds a virtio-vsock device for a guest with CID `guestCid` (3 to 0xfffffffe); returns its index. */
export function addVirtioVsock(base: u64, gsi: u32, guestCid: u64): u32 {
  checkGuestCid(guestCid);
  return attachVirtioDevice(new VirtioVsock(guestCid), base, gsi);
}

/** virtio-vsock device `index`, or null if there is no such device or it is of another kind. */
function vsockDevice(index: u32): VirtioVsock | null {
  if (index >= <u32>virtioDevices.length) return null;
  const device = virtioDevices[index].device;
  return device instanceof VirtioVsock ? changetype<VirtioVsock>(device) : null;
}

/**
 * A host client asked vsock device `device` for guest port `guestPort` over
 * host socket `handle`; returns our local port (>= 1024) or -errno (the host
 * keeps the handle). The outcome comes as vsockConnected or vsockClose.
 */
export function vsockHostConnect(device: u32, handle: u32, guestPort: u32): i32 {
  const vsock = vsockDevice(device);
  return vsock === null ? -ENODEV : vsock.hostConnect(handle, guestPort);
}

/** Host socket `handle` of vsock device `device` is readable (data, EOF or error) and/or writable. */
export function vsockReady(device: u32, handle: u32, readable: bool, writable: bool): void {
  const vsock = vsockDevice(device);
  if (vsock !== null) vsock.hostReady(handle, readable, writable);
}

/**
 * After a restore: vsock device `device` closes every connection, takes CID
 * `guestCid` and tells the guest (TRANSPORT_RESET event) to reset its sockets.
 */
export function vsockTransportReset(device: u32, guestCid: u64): void {
  checkGuestCid(guestCid);
  const vsock = vsockDevice(device);
  if (vsock !== null) vsock.transportReset(guestCid);
}

/** Where the host writes the tag (up to 36 bytes, NUL-padded) of the next addVirtioFs. */
const fsTag = memory.data(TAG_SIZE);

/** The 36-byte buffer the host fills with the tag right before addVirtioFs. */
export function virtioFsTagBuffer(): usize {
  return fsTag;
}

/**
 * Adds a virtio-fs device for host share `share` with the tag in
 * virtioFsTagBuffer (then zeroed); cacheMode 0 none, 1 auto, 2 always.
 * Returns its index. Aborts on a cache mode that does not exist (a wiring bug).
 */
export function addVirtioFs(base: u64, gsi: u32, share: u32, readOnly: bool, cacheMode: u32): u32 {
  if (cacheMode > CACHE_ALWAYS) {
    throw new Error('virtio-fs cache mode ' + cacheMode.toString() + ' unknown; expected 0 (none), 1 (auto) or 2 (always)');
  }
  const device = new VirtioFs(fsTag, share, readOnly, cacheMode);
  memory.fill(fsTag, 0, TAG_SIZE);
  return attachVirtioDevice(device, base, gsi);
}
