// The split virtqueue (virtio 1.x spec 2.7): a descriptor table, the
// driver's available ring and the device's used ring, all in guest RAM and
// all written by a hostile guest, concurrently with us (vCPU threads).
// Invariants: a queue is only used while `ready`, and `ready` implies
// isValid() (checked when the driver enables it and on restore), so ring
// accesses are in guest RAM and naturally aligned (Wasm atomics trap on
// misaligned addresses). Everything read from a descriptor is checked in
// pop() before a device sees it.

import { DescriptorChain } from './chain';
import { inGuestRam } from './guest_memory';
import { readU64, writeU64 } from './state';
import { StateReader, StateWriter } from '../snapshot';

/** Why pop() refused a chain (it returns the negated value); the device then needs a reset. */
export const enum QueueError {
  /** avail.idx moved more than the queue size past the last entry taken. */
  AVAIL_INDEX_JUMP = 1,
  HEAD_OUT_OF_RANGE = 2,
  NEXT_OUT_OF_RANGE = 3,
  /** More descriptors than the queue size: a loop, or a chain the spec forbids. */
  CHAIN_TOO_LONG = 4,
  ADDRESS_OUT_OF_RANGE = 5,
  /** The chain's total length does not fit in 32 bits. */
  LENGTH_OVERFLOW = 6,
  INDIRECT_NOT_NEGOTIATED = 7,
  NESTED_INDIRECT = 8,
  INDIRECT_WITH_NEXT = 9,
  /** An indirect table whose length is 0 or not a multiple of 16 bytes. */
  BAD_INDIRECT_LENGTH = 10,
  /** A device-readable descriptor after a device-writable one. */
  READABLE_AFTER_WRITABLE = 11,
  /** QueueReady set on a queue that is not isValid() (the transport's check, not pop's). */
  INVALID_QUEUE_CONFIG = 12,
}

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;
const DESC_SIZE: u64 = 16;
/** avail.flags: the driver does not want interrupts (ignored with EVENT_IDX). */
const AVAIL_F_NO_INTERRUPT: u16 = 1;

// Ring layouts: avail = flags u16 | idx u16 | ring[size] u16 | used_event u16;
// used = flags u16 | idx u16 | ring[size] {id u32, len u32} | avail_event u16.
const RING_HEADER: u64 = 4;
const AVAIL_ELEM_SIZE: u64 = 2;
const USED_ELEM_SIZE: u64 = 8;

export class Virtqueue {
  /** Driver-chosen size (QueueNum); the power of two check is in isValid. */
  size: u16;
  ready: bool = false;
  descAddr: u64 = 0;
  availAddr: u64 = 0;
  usedAddr: u64 = 0;
  /** VIRTIO_F_EVENT_IDX negotiated (set at DRIVER_OK). */
  eventIdx: bool = false;
  /** VIRTIO_F_INDIRECT_DESC negotiated (set at DRIVER_OK). */
  indirect: bool = false;
  /** Next avail ring entry to take. */
  lastAvailIdx: u16 = 0;
  /** used.idx as published. */
  nextUsedIdx: u16 = 0;
  /** used.idx when needsNotification last decided, so each used entry is considered once. */
  signalledUsedIdx: u16 = 0;

  /** @param maxSize the device's QueueNumMax: a power of two, at most MAX_QUEUE_SIZE */
  constructor(readonly maxSize: u16) {
    this.size = maxSize;
  }

  /** Size a power of two in [1, maxSize], rings aligned as the spec requires and inside guest RAM. */
  isValid(): bool {
    const size = <u64>this.size;
    if (size == 0 || size > <u64>this.maxSize || (size & (size - 1)) != 0) return false;
    if ((this.descAddr & 15) != 0 || (this.availAddr & 1) != 0 || (this.usedAddr & 3) != 0) return false;
    return (
      inGuestRam(this.descAddr, size * DESC_SIZE) &&
      inGuestRam(this.availAddr, RING_HEADER + size * AVAIL_ELEM_SIZE + 2) &&
      inGuestRam(this.usedAddr, RING_HEADER + size * USED_ELEM_SIZE + 2)
    );
  }

  /** Back to the state after device reset. */
  reset(): void {
    this.size = this.maxSize;
    this.ready = false;
    this.descAddr = 0;
    this.availAddr = 0;
    this.usedAddr = 0;
    this.eventIdx = false;
    this.indirect = false;
    this.lastAvailIdx = 0;
    this.nextUsedIdx = 0;
    this.signalledUsedIdx = 0;
  }

  /**
   * Takes the next available chain into `chain`: 1 when one was taken, 0 when
   * the ring is empty, or -QueueError when the driver broke the protocol (the
   * device must then fail; the queue is left in an unspecified position).
   */
  pop(chain: DescriptorChain): i32 {
    if (!this.ready) return 0;
    const size = this.size;
    const availIdx = atomic.load<u16>(<usize>this.availAddr + 2);
    const pending = <u16>(availIdx - this.lastAvailIdx);
    if (pending == 0) return 0;
    if (pending > size) return -QueueError.AVAIL_INDEX_JUMP;
    // The atomic load of avail.idx orders the reads of the entries it covers after it.
    const slot = <u64>(this.lastAvailIdx & (size - 1));
    const head = load<u16>(<usize>(this.availAddr + RING_HEADER + slot * AVAIL_ELEM_SIZE));
    this.lastAvailIdx++;
    return this.walkChain(head, chain);
  }

  /**
   * Puts back the chain the last successful pop() took, unused, so the next
   * pop() takes it again (e.g. a receive buffer popped before the device knew
   * it had nothing to put in it). Only right after that pop().
   */
  undoPop(): void {
    this.lastAvailIdx--;
  }

  /** Follows the chain starting at descriptor `head`, checking every descriptor (spec 2.7.5). */
  private walkChain(head: u16, chain: DescriptorChain): i32 {
    const size = this.size;
    chain.reset(head);
    if (head >= size) return -QueueError.HEAD_OUT_OF_RANGE;
    let table = this.descAddr;
    let tableEntries: u32 = size;
    let index: u32 = head;
    let inIndirect = false;
    let count: u32 = 0;
    let total: u64 = 0;
    while (true) {
      const at = <usize>(table + <u64>index * DESC_SIZE);
      const addr = load<u64>(at);
      const len = load<u32>(at, 8);
      const flags = load<u16>(at, 12);
      const next = load<u16>(at, 14);
      if (flags & DESC_F_INDIRECT) {
        if (!this.indirect) return -QueueError.INDIRECT_NOT_NEGOTIATED;
        if (inIndirect) return -QueueError.NESTED_INDIRECT;
        if (flags & DESC_F_NEXT) return -QueueError.INDIRECT_WITH_NEXT;
        if (len == 0 || (len & <u32>(DESC_SIZE - 1)) != 0) return -QueueError.BAD_INDIRECT_LENGTH;
        // Indirect tables have no alignment rule: plain loads read them.
        if (!inGuestRam(addr, len)) return -QueueError.ADDRESS_OUT_OF_RANGE;
        table = addr;
        tableEntries = len / <u32>DESC_SIZE;
        index = 0;
        inIndirect = true;
        continue;
      }
      // The spec bounds a chain, indirect entries included, by the queue size; this also ends loops.
      if (++count > <u32>size) return -QueueError.CHAIN_TOO_LONG;
      if (!inGuestRam(addr, len)) return -QueueError.ADDRESS_OUT_OF_RANGE;
      total += len;
      if (total > <u64>u32.MAX_VALUE) return -QueueError.LENGTH_OVERFLOW;
      const writable = (flags & DESC_F_WRITE) != 0;
      if (!writable && chain.writableCount > 0) return -QueueError.READABLE_AFTER_WRITABLE;
      // Cannot fail: count <= size <= MAX_QUEUE_SIZE, the chain's capacity.
      chain.addSegment(addr, len, writable);
      if (!(flags & DESC_F_NEXT)) return 1;
      if (<u32>next >= tableEntries) return -QueueError.NEXT_OUT_OF_RANGE;
      index = next;
    }
    return 0; // unreachable
  }

  /** Returns chain `head` to the driver with `len` bytes written into it, then publishes used.idx. */
  pushUsed(head: u16, len: u32): void {
    if (!this.ready) return;
    const slot = <u64>(this.nextUsedIdx & (this.size - 1));
    const elem = <usize>(this.usedAddr + RING_HEADER + slot * USED_ELEM_SIZE);
    store<u32>(elem, head);
    store<u32>(elem, len, 4);
    this.nextUsedIdx++;
    // Sequentially consistent: the element is visible before the index that covers it.
    atomic.store<u16>(<usize>this.usedAddr + 2, this.nextUsedIdx);
  }

  /**
   * Whether the driver wants an interrupt for the used entries published since
   * the last call (spec 2.7.7.2): with EVENT_IDX when used.idx passed
   * used_event, otherwise unless avail.flags has NO_INTERRUPT.
   */
  needsNotification(): bool {
    if (!this.ready) return false;
    // No fence needed: Wasm atomics are sequentially consistent, so the atomic
    // store of used.idx is ordered before the atomic loads below (V8 emits xchg).
    const now = this.nextUsedIdx;
    const before = this.signalledUsedIdx;
    this.signalledUsedIdx = now;
    if (now == before) return false;
    if (!this.eventIdx) return (atomic.load<u16>(<usize>this.availAddr) & AVAIL_F_NO_INTERRUPT) == 0;
    const usedEvent = atomic.load<u16>(<usize>(this.availAddr + RING_HEADER + <u64>this.size * AVAIL_ELEM_SIZE));
    // vring_need_event: used_event lies in [before, now).
    return <u16>(now - usedEvent - 1) < <u16>(now - before);
  }

  /**
   * Asks for a kick when the next buffer arrives (with EVENT_IDX: avail_event =
   * lastAvailIdx), then says whether buffers arrived meanwhile, which the
   * device must take now since no kick will come for them.
   */
  enableNotifications(): bool {
    if (!this.ready) return false;
    if (this.eventIdx) {
      const availEvent = <usize>(this.usedAddr + RING_HEADER + <u64>this.size * USED_ELEM_SIZE);
      atomic.store<u16>(availEvent, this.lastAvailIdx);
    }
    // Sequentially consistent, as in needsNotification: the avail_event store precedes this load.
    return atomic.load<u16>(<usize>this.availAddr + 2) != this.lastAvailIdx;
  }

  /** Fields in declaration order (maxSize is the device's, not saved). */
  save(w: StateWriter): void {
    w.u16(this.size);
    w.bool(this.ready);
    writeU64(w, this.descAddr);
    writeU64(w, this.availAddr);
    writeU64(w, this.usedAddr);
    w.bool(this.eventIdx);
    w.bool(this.indirect);
    w.u16(this.lastAvailIdx);
    w.u16(this.nextUsedIdx);
    w.u16(this.signalledUsedIdx);
  }

  /** Loads what save wrote; false if a ready queue would not be valid in this VM's guest RAM. */
  restore(r: StateReader): bool {
    this.size = r.u16();
    this.ready = r.bool();
    this.descAddr = readU64(r);
    this.availAddr = readU64(r);
    this.usedAddr = readU64(r);
    this.eventIdx = r.bool();
    this.indirect = r.bool();
    this.lastAvailIdx = r.u16();
    this.nextUsedIdx = r.u16();
    this.signalledUsedIdx = r.u16();
    r.check(!this.ready || this.isValid());
    return r.ok;
  }
}
