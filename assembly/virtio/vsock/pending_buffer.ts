// Guest->host bytes a connection accepted from the guest but the host socket
// did not take yet (a partial write or EAGAIN): a ring buffer in the module's
// heap, grown on demand by doubling up to a fixed limit. The guest's credit
// (the buf_alloc we advertise) keeps it within that limit; push() refuses
// anything beyond it, so it never grows without bound.

import { DescriptorChain } from '../chain';
import { IOVEC_ADDR, IOVEC_LEN, IOVEC_SIZE } from '../io';

const INITIAL_CAPACITY: u32 = 4096;

export class PendingBuffer {
  /** Bytes held. */
  length: u32 = 0;
  private data: StaticArray<u8> | null = null;
  /** Offset of the oldest byte in `data`. */
  private start: u32 = 0;

  /** @param limit the most bytes it may hold: a power of two, at least INITIAL_CAPACITY */
  constructor(readonly limit: u32) {}

  /**
   * Appends readable bytes [offset, offset + len) of `chain` (checked to be
   * in range by the caller); false, appending nothing, if they would exceed
   * the limit.
   */
  push(chain: DescriptorChain, offset: u32, len: u32): bool {
    if (len > this.limit - this.length) return false;
    if (len == 0) return true;
    this.reserve(this.length + len);
    const data = this.data!;
    const capacity = <u32>data.length;
    const end = (this.start + this.length) & (capacity - 1);
    const first = min(len, capacity - end);
    const base = changetype<usize>(data);
    chain.readBytes(offset, base + <usize>end, first);
    if (first < len) chain.readBytes(offset + first, base, len - first);
    this.length += len;
    return true;
  }

  /**
   * Writes the held bytes as up to two 16-byte I/O vector entries at `iov`
   * (oldest first); returns the entry count (0 when empty).
   */
  fillIov(iov: usize): u32 {
    if (this.length == 0) return 0;
    const data = this.data!;
    const capacity = <u32>data.length;
    const first = min(this.length, capacity - this.start);
    const base = changetype<usize>(data);
    setIov(iov, base + <usize>this.start, first);
    if (first == this.length) return 1;
    setIov(iov + IOVEC_SIZE, base, this.length - first);
    return 2;
  }

  /** Drops the oldest `n` bytes (n <= length), which the host took. */
  consume(n: u32): void {
    this.length -= n;
    this.start = this.length == 0 ? 0 : (this.start + n) & (<u32>this.data!.length - 1);
  }

  /** Makes the capacity (a power of two) at least `needed` (<= limit), keeping the bytes in order. */
  private reserve(needed: u32): void {
    const old = this.data;
    const oldCapacity: u32 = old === null ? 0 : <u32>old.length;
    if (needed <= oldCapacity) return;
    let capacity = max(oldCapacity, INITIAL_CAPACITY);
    while (capacity < needed) capacity <<= 1;
    const data = new StaticArray<u8>(<i32>capacity);
    if (old !== null && this.length > 0) {
      const first = min(this.length, oldCapacity - this.start);
      const from = changetype<usize>(old);
      memory.copy(changetype<usize>(data), from + <usize>this.start, first);
      memory.copy(changetype<usize>(data) + <usize>first, from, this.length - first);
    }
    this.data = data;
    this.start = 0;
  }
}

/** Stores one I/O vector entry {u64 addr, u64 len} at `at`. */
export function setIov(at: usize, addr: usize, len: u32): void {
  store<u64>(at + IOVEC_ADDR, <u64>addr);
  store<u64>(at + IOVEC_LEN, <u64>len);
}
