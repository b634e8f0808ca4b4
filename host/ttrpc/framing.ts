// ttRPC message frames (containerd/ttrpc PROTOCOL.md): a 10-byte header
// (u32 BE data length, u32 BE stream id, u8 type, u8 flags) and the data.
// The peer may be a hostile guest, so the decoder never buffers more than
// one frame of at most MAX_MESSAGE_BYTES, whatever length a header claims.
import { Code, TtrpcError } from './status.js';

export const HEADER_BYTES = 10;
export const MAX_MESSAGE_BYTES = 4 << 20;

export const MessageType = {
  REQUEST: 1,
  RESPONSE: 2,
  DATA: 3,
} as const;

/** Request and data flags; unary calls (all hako uses) send none. */
export const Flags = {
  REMOTE_CLOSED: 1,
  REMOTE_OPEN: 2,
  NO_DATA: 4,
} as const;

export interface FrameHeader {
  length: number;
  streamId: number;
  type: number;
  flags: number;
}

export interface Frame extends FrameHeader {
  data: Buffer;
}

/** One frame, header and data, ready to write; data over MAX_MESSAGE_BYTES is RESOURCE_EXHAUSTED. */
export function encodeFrame(streamId: number, type: number, flags: number, data: Uint8Array): Buffer {
  if (data.length > MAX_MESSAGE_BYTES) {
    throw new TtrpcError(Code.RESOURCE_EXHAUSTED, `message of ${data.length} bytes exceeds the ttRPC maximum of ${MAX_MESSAGE_BYTES}`);
  }
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > 0xffff_ffff) {
    throw new RangeError(`ttRPC stream id ${streamId}: expected an integer in [0, 2^32)`);
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + data.length);
  frame.writeUInt32BE(data.length, 0);
  frame.writeUInt32BE(streamId, 4);
  frame.writeUInt8(type, 8);
  frame.writeUInt8(flags, 9);
  frame.set(data, HEADER_BYTES);
  return frame;
}

/**
 * Reassembles frames from a byte stream cut anywhere: push() every chunk as
 * it arrives. A header announcing more than MAX_MESSAGE_BYTES is reported to
 * onOversized as soon as it is complete and its data is skipped as it
 * arrives, never stored, so the stream stays in step (as containerd does).
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFilled = 0;
  /** The frame whose data is being collected (or skipped, when `data` is null). */
  private current: FrameHeader | null = null;
  private data: Buffer | null = null;
  private dataFilled = 0;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    private readonly onOversized: (header: FrameHeader) => void,
  ) {}

  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length || this.frameComplete()) {
      if (this.current === null) {
        const n = Math.min(HEADER_BYTES - this.headerFilled, chunk.length - offset);
        this.header.set(chunk.subarray(offset, offset + n), this.headerFilled);
        this.headerFilled += n;
        offset += n;
        if (this.headerFilled < HEADER_BYTES) return;
        this.startFrame();
        continue;
      }
      if (this.frameComplete()) {
        this.finishFrame();
        continue;
      }
      const n = Math.min(this.current.length - this.dataFilled, chunk.length - offset);
      this.data?.set(chunk.subarray(offset, offset + n), this.dataFilled);
      this.dataFilled += n;
      offset += n;
    }
  }

  private frameComplete(): boolean {
    return this.current !== null && this.dataFilled === this.current.length;
  }

  private startFrame(): void {
    const header: FrameHeader = {
      length: this.header.readUInt32BE(0),
      streamId: this.header.readUInt32BE(4),
      type: this.header.readUInt8(8),
      flags: this.header.readUInt8(9),
    };
    this.headerFilled = 0;
    this.current = header;
    this.dataFilled = 0;
    if (header.length > MAX_MESSAGE_BYTES) {
      this.data = null;
      this.onOversized(header);
    } else {
      this.data = Buffer.allocUnsafe(header.length);
    }
  }

  /** Resets before calling out, so a throwing callback cannot leave the decoder mid-frame. */
  private finishFrame(): void {
    const header = this.current!;
    const data = this.data;
    this.current = null;
    this.data = null;
    this.dataFilled = 0;
    if (data !== null) this.onFrame({ ...header, data });
  }
}
