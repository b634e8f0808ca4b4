// Block I/O leaves the device models as batches of fixed-size records in
// Wasm memory, which the host's I/O engine (native/io_engine.cc, mirroring
// this layout) turns into system calls on the image files. Completions come
// back by record id through the exports ioComplete / ioCompleteEnd.
//
// Record, 32 bytes, little-endian:
//   0 id u32 | 4 op u8 | 5 flags u8 | 6 file u16 | 8 offset u64 (bytes) |
//   16 length u64 (bytes) | 24 iovPtr u32 | 28 iovCount u32
// I/O vector entry, 16 bytes: gpa u64 | len u64 (guest-physical, in guest RAM).
// The result of a record is the byte count transferred (the full length) or
// -errno; the device looks only at the sign, so the engine must turn a short
// transfer it cannot finish into an error (e.g. -EIO at end of file).

/**
 * Hands `count` records at Wasm address `records` to the host. The records
 * are read before it returns; their I/O vectors stay valid until completion.
 */
@external("env", "ioSubmit")
export declare function ioSubmit(records: usize, count: u32): void;

export const IO_RECORD_SIZE: u32 = 32;
export const RECORD_ID: usize = 0;
export const RECORD_OP: usize = 4;
export const RECORD_FLAGS: usize = 5;
export const RECORD_FILE: usize = 6;
export const RECORD_OFFSET: usize = 8;
export const RECORD_LENGTH: usize = 16;
export const RECORD_IOV_PTR: usize = 24;
export const RECORD_IOV_COUNT: usize = 28;

export const IOVEC_SIZE: u32 = 16;
export const IOVEC_ADDR: usize = 0;
export const IOVEC_LEN: usize = 8;

/** What a record asks the host to do. */
export const enum IoOp {
  /** preadv into the I/O vectors. */
  READ = 0,
  /** pwritev from the I/O vectors. */
  WRITE = 1,
  /** fdatasync. */
  FLUSH = 2,
  /** Deallocate [offset, offset + length) keeping the file size (punch hole). */
  DISCARD = 3,
  /** Make [offset, offset + length) read as zeroes. */
  WRITE_ZEROES = 4,
}

/** WRITE_ZEROES flag: the host may deallocate the range instead of writing zeroes. */
export const IO_FLAG_MAY_UNMAP: u8 = 1;

/** The errno the host reports when the file system cannot discard or zero a range. */
export const EOPNOTSUPP: i32 = 95;

/** The records one device builds while it takes requests off its queue, handed to the host in one ioSubmit. */
export class IoBatch {
  count: u32 = 0;
  private readonly records: StaticArray<u8>;

  constructor(readonly capacity: u32) {
    this.records = new StaticArray<u8>(<i32>(capacity * IO_RECORD_SIZE));
  }

  /** Appends a record; the caller keeps count below capacity (one record per in-flight slot). */
  add(id: u32, op: IoOp, flags: u8, file: u16, offset: u64, length: u64, iovPtr: usize, iovCount: u32): void {
    assert(this.count < this.capacity, 'I/O batch overflow');
    const at = changetype<usize>(this.records) + <usize>(this.count * IO_RECORD_SIZE);
    store<u32>(at + RECORD_ID, id);
    store<u8>(at + RECORD_OP, <u8>op);
    store<u8>(at + RECORD_FLAGS, flags);
    store<u16>(at + RECORD_FILE, file);
    store<u64>(at + RECORD_OFFSET, offset);
    store<u64>(at + RECORD_LENGTH, length);
    store<u32>(at + RECORD_IOV_PTR, <u32>iovPtr);
    store<u32>(at + RECORD_IOV_COUNT, iovCount);
    this.count++;
  }

  /** Hands the records to the host, if any, and starts an empty batch. */
  submit(): void {
    if (this.count == 0) return;
    const count = this.count;
    this.count = 0;
    ioSubmit(changetype<usize>(this.records), count);
  }
}
