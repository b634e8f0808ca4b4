// Replies go into the chain's device-writable part: the 16-byte
// fuse_out_header at offset 0, the op's payload right after it. Ops build
// fixed-size payloads in a small scratch and check that they fit before
// they change anything on the host, so a reply never fails half-way; the
// header is written last, once the outcome is known.

import { DescriptorChain } from '../chain';
import { EINVAL, EIO, OUT_HEADER_SIZE } from './abi';

/** Largest errno a host result may carry; anything below -MAX_ERRNO is a host bug, answered -EIO. */
const MAX_ERRNO: i32 = 4095;

/** Whether `payload` bytes fit after the out header. */
export function replyFits(chain: DescriptorChain, payload: u32): bool {
  return chain.writableBytes >= OUT_HEADER_SIZE && payload <= chain.writableBytes - OUT_HEADER_SIZE;
}

/** Copies `len` payload bytes from Wasm address `src` after the out header: `len`, or -EINVAL if they do not fit. */
export function writePayload(chain: DescriptorChain, src: usize, len: u32): i32 {
  return chain.writeBytes(OUT_HEADER_SIZE, src, len) ? <i32>len : -EINVAL;
}

/**
 * Writes the out header for op `result` (payload bytes already written, or
 * -errno): the bytes the reply used, or -1 when the chain cannot hold even
 * the header (the driver broke the protocol).
 */
export function writeOutHeader(chain: DescriptorChain, unique: u64, result: i32): i32 {
  if (chain.writableBytes < OUT_HEADER_SIZE) return -1;
  let error: i32 = 0;
  let len = OUT_HEADER_SIZE;
  if (result >= 0) len += <u32>result;
  else error = result >= -MAX_ERRNO ? result : -EIO;
  const header = memory.data(<i32>OUT_HEADER_SIZE);
  store<u32>(header, len);
  store<i32>(header, error, 4);
  store<u64>(header, unique, 8);
  chain.writeBytes(0, header, OUT_HEADER_SIZE);
  return <i32>len;
}

/** Scratch for one fixed-size payload (the largest: entry_out + open_out of CREATE). */
export class ReplyBuffer {
  private readonly bytes: StaticArray<u8> = new StaticArray<u8>(256);

  /** Zeroes the first `len` bytes and returns the buffer's address. */
  begin(len: u32): usize {
    const at = changetype<usize>(this.bytes);
    memory.fill(at, 0, len);
    return at;
  }
}
