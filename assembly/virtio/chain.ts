// A descriptor chain the queue has validated and flattened into segments:
// device-readable ones first, then device-writable ones, each inside guest
// RAM. Devices read and write guest buffers only through it, by byte offset
// into the readable or writable area, so they never handle descriptor
// addresses themselves. One instance is reused for every request.

import { MAX_QUEUE_SIZE } from './features';

const enum Walk {
  COPY_OUT,
  COPY_IN,
  SLICE,
}

/** (guest address, length) pieces, e.g. the I/O vector of one request; at most MAX_QUEUE_SIZE entries. */
export class IoVecList {
  count: i32 = 0;
  private addrs: StaticArray<u64> = new StaticArray<u64>(MAX_QUEUE_SIZE);
  private lens: StaticArray<u32> = new StaticArray<u32>(MAX_QUEUE_SIZE);

  clear(): void {
    this.count = 0;
  }

  /** Appends a piece; false (and nothing appended) when the list is full. */
  push(addr: u64, len: u32): bool {
    const i = this.count;
    if (i >= this.addrs.length) return false;
    unchecked((this.addrs[i] = addr));
    unchecked((this.lens[i] = len));
    this.count = i + 1;
    return true;
  }

  /** Address of piece `i`; 0 outside [0, count). */
  addr(i: i32): u64 {
    return i >= 0 && i < this.count ? unchecked(this.addrs[i]) : 0;
  }

  /** Length of piece `i`; 0 outside [0, count). */
  len(i: i32): u32 {
    return i >= 0 && i < this.count ? unchecked(this.lens[i]) : 0;
  }
}

export class DescriptorChain {
  /** Descriptor index to hand back in Virtqueue.pushUsed. */
  head: u16 = 0;
  readableCount: i32 = 0;
  writableCount: i32 = 0;
  readableBytes: u32 = 0;
  writableBytes: u32 = 0;
  /** Readable segments at [0, readableCount), writable ones after them. */
  private segments: IoVecList = new IoVecList();

  /** Starts a new chain at descriptor `head` (used by Virtqueue.pop). */
  reset(head: u16): void {
    this.head = head;
    this.readableCount = 0;
    this.writableCount = 0;
    this.readableBytes = 0;
    this.writableBytes = 0;
    this.segments.clear();
  }

  /**
   * Appends a segment the queue has checked (in guest RAM, readable ones
   * before writable ones, totals within u32). False when the chain is full.
   */
  addSegment(addr: u64, len: u32, writable: bool): bool {
    if (!this.segments.push(addr, len)) return false;
    if (writable) {
      this.writableCount++;
      this.writableBytes += len;
    } else {
      this.readableCount++;
      this.readableBytes += len;
    }
    return true;
  }

  readableAddr(i: i32): u64 {
    return i < this.readableCount ? this.segments.addr(i) : 0;
  }

  readableLen(i: i32): u32 {
    return i < this.readableCount ? this.segments.len(i) : 0;
  }

  writableAddr(i: i32): u64 {
    return i >= 0 ? this.segments.addr(this.readableCount + i) : 0;
  }

  writableLen(i: i32): u32 {
    return i >= 0 ? this.segments.len(this.readableCount + i) : 0;
  }

  /** Copies `len` bytes from the readable area at `offset` to Wasm address `dst`; false if the area is too short. */
  readBytes(offset: u32, dst: usize, len: u32): bool {
    if (!this.fits(offset, len, this.readableBytes)) return false;
    return this.walk(0, this.readableCount, offset, len, Walk.COPY_OUT, dst, null);
  }

  /** Copies `len` bytes from Wasm address `src` into the writable area at `offset`; false if the area is too short. */
  writeBytes(offset: u32, src: usize, len: u32): bool {
    if (!this.fits(offset, len, this.writableBytes)) return false;
    return this.walk(this.readableCount, this.readableCount + this.writableCount, offset, len, Walk.COPY_IN, src, null);
  }

  /** Writes one byte into the writable area at `offset`; false if the area is too short. */
  writeU8(offset: u32, value: u8): bool {
    const scratch = memory.data(1);
    store<u8>(scratch, value);
    return this.writeBytes(offset, scratch, 1);
  }

  /** Appends the (gpa, len) pieces of readable bytes [offset, offset + len) to `out`; false if out of range or `out` fills. */
  readableSlice(offset: u32, len: u32, out: IoVecList): bool {
    if (!this.fits(offset, len, this.readableBytes)) return false;
    return this.walk(0, this.readableCount, offset, len, Walk.SLICE, 0, out);
  }

  /** Appends the (gpa, len) pieces of writable bytes [offset, offset + len) to `out`; false if out of range or `out` fills. */
  writableSlice(offset: u32, len: u32, out: IoVecList): bool {
    if (!this.fits(offset, len, this.writableBytes)) return false;
    return this.walk(this.readableCount, this.readableCount + this.writableCount, offset, len, Walk.SLICE, 0, out);
  }

  private fits(offset: u32, len: u32, total: u32): bool {
    return offset <= total && len <= total - offset;
  }

  /**
   * Visits bytes [offset, offset + len) of the concatenation of segments
   * [first, end) piece by piece: copies them out to / in from Wasm address
   * `wasm`, or appends them to `out`. False when `out` fills up.
   */
  private walk(first: i32, end: i32, offset: u32, len: u32, what: Walk, wasm: usize, out: IoVecList | null): bool {
    let done: u32 = 0;
    let skip = offset;
    for (let i = first; i < end && done < len; i++) {
      const segLen = this.segments.len(i);
      if (skip >= segLen) {
        skip -= segLen;
        continue;
      }
      const n = min(segLen - skip, len - done);
      const gpa = this.segments.addr(i) + skip;
      if (what == Walk.COPY_OUT) memory.copy(wasm + <usize>done, <usize>gpa, n);
      else if (what == Walk.COPY_IN) memory.copy(<usize>gpa, wasm + <usize>done, n);
      else if (!out!.push(gpa, n)) return false;
      done += n;
      skip = 0;
    }
    return true;
  }
}
