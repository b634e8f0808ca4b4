// virtio-blk (virtio 1.x spec 5.2): a raw image file as a disk, one request
// queue. Requests are parsed and checked here (request.ts); valid data
// requests go to the host as I/O records (io.ts) in one batch per kick and
// complete asynchronously through complete() / completeEnd(). GET_ID and
// refused requests complete at once. Each request in flight holds a slot;
// a record's id names the device and the slot, so the host never sees guest
// descriptor indices and a stale or bogus id cannot touch another request.

import { StateReader, StateWriter } from '../../snapshot';
import { DescriptorChain, IoVecList } from '../chain';
import { VirtioDevice } from '../device';
import { DEVICE_ID_BLOCK } from '../features';
import { inGuestRam } from '../guest_memory';
import { EOPNOTSUPP, IO_FLAG_MAY_UNMAP, IOVEC_ADDR, IOVEC_LEN, IOVEC_SIZE, IoBatch, IoOp } from '../io';
import { readU64, writeU64 } from '../state';
import {
  BlockRequest,
  MAX_DISCARD_SECTORS,
  MAX_DISCARD_SEGMENTS,
  NO_STATUS_BYTE,
  SECTOR_SHIFT,
  SECTOR_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from './request';

const BLOCK_QUEUE_SIZE: u16 = 256;

// Feature bits (spec 5.2.3).
const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
const VIRTIO_BLK_F_RO: u64 = 1 << 5;
const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;
const VIRTIO_BLK_F_DISCARD: u64 = 1 << 13;
const VIRTIO_BLK_F_WRITE_ZEROES: u64 = 1 << 14;

// Config space layout (spec 5.2.4), little-endian. Fields of features we do not offer read 0.
const CONFIG_CAPACITY: i32 = 0;
const CONFIG_SEG_MAX: i32 = 12;
const CONFIG_BLK_SIZE: i32 = 20;
const CONFIG_MAX_DISCARD_SECTORS: i32 = 36;
const CONFIG_MAX_DISCARD_SEG: i32 = 40;
const CONFIG_DISCARD_SECTOR_ALIGNMENT: i32 = 44;
const CONFIG_MAX_WRITE_ZEROES_SECTORS: i32 = 48;
const CONFIG_MAX_WRITE_ZEROES_SEG: i32 = 52;
const CONFIG_WRITE_ZEROES_MAY_UNMAP: i32 = 56;
/** Up to and including write_zeroes_may_unmap and its padding; later fields belong to features we do not offer. */
const CONFIG_SIZE: u32 = 60;
/** Data segments per request: the queue size minus the header and status descriptors, as Linux and QEMU count. */
const SEG_MAX: u32 = <u32>BLOCK_QUEUE_SIZE - 2;
/** Discard granularity hint: 4 KiB, the host file system's block, which a punched hole frees whole. */
const DISCARD_SECTOR_ALIGNMENT: u32 = 8;

/** The GET_ID string: up to 20 bytes, NUL-padded (spec 5.2.6). */
const ID_BYTES: i32 = 20;

/** failure code (VirtioDevice.fail) for a chain without a writable byte for the status; above every QueueError. */
export const BLOCK_ERROR_NO_STATUS_BYTE: u32 = 0x100;

/** One slot per request the driver can have outstanding: a chain has a distinct head descriptor. */
const SLOT_COUNT: i32 = <i32>BLOCK_QUEUE_SIZE;
/** A chain has at most queue-size descriptors (indirect ones included), so its data has at most that many pieces. */
const MAX_IOVECS: i32 = <i32>BLOCK_QUEUE_SIZE;
/** Record ids: the device's index above the slot's ID_SLOT_BITS bits. */
const ID_SLOT_BITS: u32 = 16;

/** The virtio device index a record id names. */
export function recordDevice(id: u32): u32 {
  return id >>> ID_SLOT_BITS;
}

/** The in-flight slot a record id names. */
export function recordSlot(id: u32): u32 {
  return id & ((1 << ID_SLOT_BITS) - 1);
}

// Slot states.
const SLOT_FREE: u8 = 0;
/** Submitted; its completion goes to the guest. */
const SLOT_BUSY: u8 = 1;
/** Submitted before a device reset; its completion is dropped, then the slot is free. */
const SLOT_ORPHANED: u8 = 2;

/** The block device's requests in flight, by slot. */
class InFlight {
  state: StaticArray<u8> = new StaticArray<u8>(SLOT_COUNT);
  head: StaticArray<u16> = new StaticArray<u16>(SLOT_COUNT);
  op: StaticArray<u8> = new StaticArray<u8>(SLOT_COUNT);
  statusAddr: StaticArray<u64> = new StaticArray<u64>(SLOT_COUNT);
  /** Bytes the request writes into its chain on success (data and status byte). */
  usedLen: StaticArray<u32> = new StaticArray<u32>(SLOT_COUNT);
  /** MAX_IOVECS I/O vector entries per slot, in the io.ts layout. */
  iovecs: StaticArray<u8> = new StaticArray<u8>(SLOT_COUNT * MAX_IOVECS * <i32>IOVEC_SIZE);
  /** Free slots, a stack of `freeCount`. */
  private free: StaticArray<u16> = new StaticArray<u16>(SLOT_COUNT);
  freeCount: i32 = SLOT_COUNT;

  constructor() {
    for (let i = 0; i < SLOT_COUNT; i++) unchecked((this.free[i] = <u16>(SLOT_COUNT - 1 - i)));
  }

  /** A free slot, now BUSY; the caller checks freeCount > 0 first. */
  take(head: u16, op: u8, statusAddr: u64, usedLen: u32): i32 {
    const slot = <i32>unchecked(this.free[--this.freeCount]);
    unchecked((this.state[slot] = SLOT_BUSY));
    unchecked((this.head[slot] = head));
    unchecked((this.op[slot] = op));
    unchecked((this.statusAddr[slot] = statusAddr));
    unchecked((this.usedLen[slot] = usedLen));
    return slot;
  }

  release(slot: i32): void {
    unchecked((this.state[slot] = SLOT_FREE));
    unchecked((this.free[this.freeCount++] = <u16>slot));
  }

  /** Wasm address of slot `slot`'s I/O vector. */
  iovecAddr(slot: i32): usize {
    return changetype<usize>(this.iovecs) + <usize>(slot * MAX_IOVECS * <i32>IOVEC_SIZE);
  }

  /** After a device reset: every request in flight belongs to a driver that is gone. */
  orphanAll(): void {
    for (let i = 0; i < SLOT_COUNT; i++) {
      if (unchecked(this.state[i]) == SLOT_BUSY) unchecked((this.state[i] = SLOT_ORPHANED));
    }
  }

  count(): u32 {
    return <u32>(SLOT_COUNT - this.freeCount);
  }
}

export class VirtioBlock extends VirtioDevice {
  /** Disk serial for GET_ID, NUL-padded. */
  readonly id: StaticArray<u8> = new StaticArray<u8>(ID_BYTES);
  private readonly config: StaticArray<u8> = new StaticArray<u8>(CONFIG_SIZE);
  private readonly inFlight: InFlight = new InFlight();
  private readonly batch: IoBatch = new IoBatch(<u32>SLOT_COUNT);
  private readonly chain: DescriptorChain = new DescriptorChain();
  private readonly request: BlockRequest = new BlockRequest();
  private readonly pieces: IoVecList = new IoVecList();
  /** Used entries were pushed since the driver was last considered for an interrupt. */
  private usedPending: bool = false;
  /** The queue has requests waiting for a free slot: serve them when a completion frees one. */
  private stalled: bool = false;

  /**
   * @param index this device's index among the VM's virtio devices (high half of its record ids)
   * @param file the host's index of the image file (the records' file field)
   * @param capacity disk size in 512-byte sectors
   */
  constructor(
    readonly index: u32,
    readonly file: u16,
    readonly capacity: u64,
    readonly readOnly: bool,
  ) {
    super(DEVICE_ID_BLOCK, 1, BLOCK_QUEUE_SIZE);
    // Byte offsets of every sector must fit in 64 bits.
    if (capacity > u64.MAX_VALUE >> SECTOR_SHIFT) throw new Error('virtio-blk capacity exceeds 2^55 sectors');
    if (index >= 1 << (32 - ID_SLOT_BITS)) throw new Error('virtio-blk device index does not fit in a record id');
    const id = 'hako-disk-' + file.toString();
    for (let i = 0; i < min(id.length, ID_BYTES); i++) unchecked((this.id[i] = <u8>id.charCodeAt(i)));
    this.fillConfig();
  }

  deviceFeatures(): u64 {
    const common = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH;
    return this.readOnly ? common | VIRTIO_BLK_F_RO : common | VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES;
  }

  configRead(offset: u32, size: u32): u64 {
    if (size > 8 || offset > CONFIG_SIZE || size > CONFIG_SIZE - offset) return 0;
    let value: u64 = 0;
    for (let i = <i32>size - 1; i >= 0; i--) value = (value << 8) | unchecked(this.config[<i32>offset + i]);
    return value;
  }

  queueNotify(index: i32): void {
    this.serveQueue();
  }

  /** Requests in flight are orphaned: their completions must not reach the next driver's rings. */
  reset(): void {
    this.inFlight.orphanAll();
    this.usedPending = false;
    this.stalled = false;
  }

  /** Records submitted and not yet completed, orphans included. */
  ioInFlight(): u32 {
    return this.inFlight.count();
  }

  /**
   * The host finished record slot `slot` with `result` (bytes or -errno).
   * Unknown and free slots are ignored; an orphan's result is dropped.
   */
  complete(slot: u32, result: i32): void {
    if (slot >= <u32>SLOT_COUNT) return;
    const s = <i32>slot;
    const inFlight = this.inFlight;
    const state = unchecked(inFlight.state[s]);
    if (state == SLOT_FREE) return;
    if (state == SLOT_BUSY) {
      let status = VIRTIO_BLK_S_OK;
      let usedLen = unchecked(inFlight.usedLen[s]);
      if (result < 0) {
        const op = unchecked(inFlight.op[s]);
        const notSupported = result == -EOPNOTSUPP && (op == IoOp.DISCARD || op == IoOp.WRITE_ZEROES);
        status = notSupported ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
        usedLen = 1;
      }
      this.finish(unchecked(inFlight.head[s]), unchecked(inFlight.statusAddr[s]), status, usedLen);
    }
    inFlight.release(s);
  }

  /** After a batch of complete() calls: interrupt the driver if it wants one, and serve requests that waited for a slot. */
  completeEnd(): void {
    if (this.stalled) {
      this.stalled = false;
      if (this.isLive()) this.serveQueue();
    }
    this.notifyIfNeeded();
  }

  /** The record id for slot `slot`. */
  private recordId(slot: i32): u32 {
    return (this.index << ID_SLOT_BITS) | <u32>slot;
  }

  /**
   * Payload: capacity u64, readOnly, the offered device features u64, the
   * GET_ID string. Requests in flight are not saved: the host drains block
   * I/O first and refuses to save while ioInFlight() is not 0, so the rings
   * already hold every completion.
   */
  save(w: StateWriter): void {
    writeU64(w, this.capacity);
    w.bool(this.readOnly);
    writeU64(w, this.deviceFeatures());
    for (let i = 0; i < ID_BYTES; i++) w.u8(unchecked(this.id[i]));
  }

  /**
   * The disk must have the mode it was saved with; another size (another
   * image behind the disk) becomes a config change when the VM resumes. The
   * id the guest has seen is kept. The host restores only with nothing in
   * flight; should records still be out, their completions must not reach the
   * restored rings, so they are orphaned as on a reset.
   */
  restore(r: StateReader): bool {
    const savedCapacity = readU64(r);
    r.check(r.bool() == this.readOnly);
    r.check(readU64(r) == this.deviceFeatures());
    const id = new StaticArray<u8>(ID_BYTES);
    for (let i = 0; i < ID_BYTES; i++) unchecked((id[i] = r.u8()));
    if (!r.ok) return false;
    memory.copy(changetype<usize>(this.id), changetype<usize>(id), <usize>ID_BYTES);
    this.configChangedOnRestore = savedCapacity != this.capacity;
    this.reset();
    return true;
  }

  /** Takes every available request (while slots last), then hands the batch of records to the host. */
  private serveQueue(): void {
    const queue = this.queues[0];
    const chain = this.chain;
    let more = true;
    while (more) {
      while (this.inFlight.freeCount > 0) {
        const popped = queue.pop(chain);
        if (popped == 0) break;
        if (popped < 0) this.fail(<u32>-popped);
        else if (!this.serve(chain)) this.fail(BLOCK_ERROR_NO_STATUS_BYTE);
        if (!this.isLive()) break;
      }
      if (!this.isLive()) break;
      if (this.inFlight.freeCount == 0) {
        // No kick is needed to come back: the next completion frees a slot.
        this.stalled = true;
        break;
      }
      more = queue.enableNotifications();
    }
    // Requests taken before a failure are still served.
    this.batch.submit();
    this.notifyIfNeeded();
  }

  /** Serves one chain: completes it at once or adds its record to the batch. False if it has no status byte. */
  private serve(chain: DescriptorChain): bool {
    const request = this.request;
    const verdict = request.parse(chain, this.capacity, this.readOnly);
    if (verdict == NO_STATUS_BYTE) return false;
    if (verdict != VIRTIO_BLK_S_OK) {
      this.finish(chain.head, request.statusAddr, <u8>verdict, 1);
      return true;
    }
    switch (request.type) {
      case VIRTIO_BLK_T_IN:
        this.submitTransfer(chain, IoOp.READ);
        break;
      case VIRTIO_BLK_T_OUT:
        this.submitTransfer(chain, IoOp.WRITE);
        break;
      case VIRTIO_BLK_T_FLUSH:
        // A read-only file has nothing to write back.
        if (this.readOnly) this.finish(chain.head, request.statusAddr, VIRTIO_BLK_S_OK, 1);
        else this.submit(chain.head, IoOp.FLUSH, 0, 0, 0, 1, null);
        break;
      case VIRTIO_BLK_T_GET_ID:
        this.getId(chain);
        break;
      default: {
        // Discard or write zeroes, range checked by parse.
        const isDiscard = request.type == VIRTIO_BLK_T_DISCARD;
        const flags = !isDiscard && request.unmap ? IO_FLAG_MAY_UNMAP : 0;
        const op = isDiscard ? IoOp.DISCARD : IoOp.WRITE_ZEROES;
        if (request.sectors == 0) this.finish(chain.head, request.statusAddr, VIRTIO_BLK_S_OK, 1);
        else this.submit(chain.head, op, flags, request.sector, request.sectors, 1, null);
      }
    }
    return true;
  }

  /** A read (into the writable area before the status byte) or write (from the readable area after the header). */
  private submitTransfer(chain: DescriptorChain, op: IoOp): void {
    const request = this.request;
    const length = request.dataLength;
    if (length == 0) {
      this.finish(chain.head, request.statusAddr, VIRTIO_BLK_S_OK, 1);
      return;
    }
    const pieces = this.pieces;
    pieces.clear();
    // Cannot fail: parse sized the data area from the chain.
    if (op == IoOp.READ) chain.writableSlice(0, length, pieces);
    else chain.readableSlice(request.dataOffset, length, pieces);
    // Cannot happen either (a chain has at most queue-size descriptors), but a slot's vector must never overflow.
    if (pieces.count > MAX_IOVECS) {
      this.finish(chain.head, request.statusAddr, VIRTIO_BLK_S_IOERR, 1);
      return;
    }
    const usedLen = op == IoOp.READ ? length + 1 : 1;
    this.submit(chain.head, op, 0, request.sector, <u64>length >> SECTOR_SHIFT, usedLen, pieces);
  }

  /** Takes a slot, copies `pieces` (if any) into its I/O vector and adds its record to the batch. */
  private submit(head: u16, op: IoOp, flags: u8, sector: u64, sectors: u64, usedLen: u32, pieces: IoVecList | null): void {
    const slot = this.inFlight.take(head, <u8>op, this.request.statusAddr, usedLen);
    const iov = this.inFlight.iovecAddr(slot);
    const count = pieces === null ? 0 : pieces.count;
    for (let i = 0; i < count; i++) {
      const at = iov + <usize>(i * <i32>IOVEC_SIZE);
      store<u64>(at + IOVEC_ADDR, pieces!.addr(i));
      store<u64>(at + IOVEC_LEN, <u64>pieces!.len(i));
    }
    const id = this.recordId(slot);
    this.batch.add(id, op, flags, this.file, sector << SECTOR_SHIFT, sectors << SECTOR_SHIFT, iov, <u32>count);
  }

  /** Writes the id, cut to the data area, and completes at once. */
  private getId(chain: DescriptorChain): void {
    const request = this.request;
    const n = min(request.dataLength, <u32>ID_BYTES);
    chain.writeBytes(0, changetype<usize>(this.id), n);
    this.finish(chain.head, request.statusAddr, VIRTIO_BLK_S_OK, n + 1);
  }

  /** Writes the status byte and returns the chain to the driver. */
  private finish(head: u16, statusAddr: u64, status: u8, usedLen: u32): void {
    // The queue checked the address when the chain was popped; guest RAM never shrinks, but stay defensive.
    if (inGuestRam(statusAddr, 1)) store<u8>(<usize>statusAddr, status);
    this.queues[0].pushUsed(head, usedLen);
    this.usedPending = true;
  }

  private notifyIfNeeded(): void {
    if (!this.usedPending) return;
    this.usedPending = false;
    if (this.queues[0].needsNotification()) this.signalUsed();
  }

  private fillConfig(): void {
    const config = changetype<usize>(this.config);
    store<u64>(config + CONFIG_CAPACITY, this.capacity);
    store<u32>(config + CONFIG_SEG_MAX, SEG_MAX);
    store<u32>(config + CONFIG_BLK_SIZE, SECTOR_SIZE);
    if (this.readOnly) return;
    store<u32>(config + CONFIG_MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS);
    store<u32>(config + CONFIG_MAX_DISCARD_SEG, MAX_DISCARD_SEGMENTS);
    store<u32>(config + CONFIG_DISCARD_SECTOR_ALIGNMENT, DISCARD_SECTOR_ALIGNMENT);
    store<u32>(config + CONFIG_MAX_WRITE_ZEROES_SECTORS, MAX_DISCARD_SECTORS);
    store<u32>(config + CONFIG_MAX_WRITE_ZEROES_SEG, MAX_DISCARD_SEGMENTS);
    store<u8>(config + CONFIG_WRITE_ZEROES_MAY_UNMAP, 1);
  }
}
