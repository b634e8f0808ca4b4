// The device-state blob of a snapshot: its framing, and the writer and reader
// every device model serializes its fields with. The blob comes back from a
// file on disk, so it is untrusted: every read is bounds-checked and a device
// validates each value before the machine accepts the blob.
//
// Layout, all integers little-endian (WebAssembly loads and stores are
// little-endian by definition):
//   header   magic u32 "HKDS" | format version u16 | section count u16
//   section  tag u32 (four ASCII bytes) | section version u16 | payload length u32 | payload
// The format version covers this framing; each device versions its own
// payload, so one device can change its layout without touching the others.

/** "HKDS" (hako device state) read as a little-endian u32. */
export const STATE_MAGIC: u32 = 0x53444b48;
export const STATE_FORMAT_VERSION: u16 = 1;
/** Largest blob the host may hand in: far above what the devices write, small enough to allocate safely. */
export const MAX_STATE_LENGTH: u32 = 1 << 20;

/** Why a restore was refused (0 = restored); host/wasm/devices.ts turns these into messages. */
export const enum RestoreStatus {
  OK = 0,
  TOO_LARGE = 1,
  BAD_MAGIC = 2,
  BAD_FORMAT_VERSION = 3,
  TRUNCATED = 4,
  TRAILING_BYTES = 5,
  UNKNOWN_SECTION = 6,
  DUPLICATE_SECTION = 7,
  MISSING_SECTION = 8,
  BAD_SECTION_VERSION = 9,
  BAD_SECTION = 10,
}

/** A section tag from its four ASCII characters, in blob byte order. */
export function sectionTag(a: u8, b: u8, c: u8, d: u8): u32 {
  return <u32>a | (<u32>b << 8) | (<u32>c << 16) | (<u32>d << 24);
}

/** Appends little-endian fields to a growing buffer. */
export class StateWriter {
  private buf: Uint8Array = new Uint8Array(256);
  private length: i32 = 0;

  u8(value: u8): void {
    store<u8>(this.reserve(1), value);
  }

  u16(value: u16): void {
    store<u16>(this.reserve(2), value);
  }

  u32(value: u32): void {
    store<u32>(this.reserve(4), value);
  }

  f64(value: f64): void {
    store<f64>(this.reserve(8), value);
  }

  bool(value: bool): void {
    this.u8(value ? 1 : 0);
  }

  header(sectionCount: u16): void {
    this.u32(STATE_MAGIC);
    this.u16(STATE_FORMAT_VERSION);
    this.u16(sectionCount);
  }

  /** Starts a section; pass the result to endSection once its payload is written. */
  beginSection(tag: u32, version: u16): i32 {
    this.u32(tag);
    this.u16(version);
    this.u32(0); // payload length, filled in by endSection
    return this.length;
  }

  endSection(payloadStart: i32): void {
    store<u32>(this.buf.dataStart + <usize>(payloadStart - 4), <u32>(this.length - payloadStart));
  }

  /** What was written so far (a view of the writer's buffer). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /** Address of `n` more bytes at the end, growing the buffer if needed. */
  private reserve(n: i32): usize {
    if (this.buf.length - this.length < n) {
      const bigger = new Uint8Array(this.buf.length * 2 + n);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    const at = this.buf.dataStart + <usize>this.length;
    this.length += n;
    return at;
  }
}

/**
 * Reads little-endian fields from [pos, end) of a buffer. Failure is sticky:
 * a read past the end or a failed check clears `ok` and later reads return 0,
 * so a device reads all its fields and looks at `ok` once.
 */
export class StateReader {
  ok: bool = true;

  constructor(
    private readonly buf: Uint8Array,
    private pos: i32,
    private readonly end: i32,
  ) {}

  static of(bytes: Uint8Array): StateReader {
    return new StateReader(bytes, 0, bytes.length);
  }

  u8(): u8 {
    const at = this.take(1);
    return this.ok ? load<u8>(at) : 0;
  }

  u16(): u16 {
    const at = this.take(2);
    return this.ok ? load<u16>(at) : 0;
  }

  u32(): u32 {
    const at = this.take(4);
    return this.ok ? load<u32>(at) : 0;
  }

  f64(): f64 {
    const at = this.take(8);
    return this.ok ? load<f64>(at) : 0;
  }

  /** A byte that must be 0 or 1. */
  bool(): bool {
    const value = this.u8();
    this.check(value <= 1);
    return value == 1;
  }

  /** Marks the input invalid unless `condition` holds (a decoded value out of range). */
  check(condition: bool): void {
    if (!condition) this.ok = false;
  }

  atEnd(): bool {
    return this.pos == this.end;
  }

  /** A reader over the next `length` bytes, which this reader skips; null (and not ok) if they are not all there. */
  slice(length: u32): StateReader | null {
    if (!this.ok || <u32>(this.end - this.pos) < length) {
      this.ok = false;
      return null;
    }
    const start = this.pos;
    this.pos += <i32>length;
    return new StateReader(this.buf, start, this.pos);
  }

  /** Address of the next `n` bytes, or 0 (and not ok) if they are not all there. */
  private take(n: i32): usize {
    if (!this.ok || this.end - this.pos < n) {
      this.ok = false;
      return 0;
    }
    const at = this.buf.dataStart + <usize>this.pos;
    this.pos += n;
    return at;
  }
}
