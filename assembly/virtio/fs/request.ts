// One FUSE request read out of a descriptor chain: the 40-byte fuse_in_header
// and the op's arguments, copied into a bounded scratch buffer in Wasm's heap
// so the server reads fields and hands name pointers to the host without
// touching guest RAM again (the guest cannot change them under us). WRITE
// data is not copied: it stays in guest RAM and is sliced from the chain.
// Every string the guest sends is checked here before anyone uses it.

import { DescriptorChain } from '../chain';
import {
  EINVAL,
  ENAMETOOLONG,
  ERANGE,
  FUSE_WRITE,
  IN_GID,
  IN_HEADER_SIZE,
  IN_LEN,
  IN_NODEID,
  IN_OPCODE,
  IN_UID,
  IN_UNIQUE,
  NAME_MAX,
  SYMLINK_MAX,
  WRITE_IN_SIZE,
  XATTR_NAME_MAX,
  XATTR_SIZE_MAX,
} from './abi';

/**
 * The largest op arguments we take: SETXATTR's (8-byte setxattr_in, a name
 * with its NUL, a value of XATTR_SIZE_MAX). Every other op needs less.
 */
export const MAX_ARGS_SIZE: u32 = 8 + XATTR_NAME_MAX + 1 + XATTR_SIZE_MAX;

const SLASH: u8 = 0x2f;
const DOT: u8 = 0x2e;

export class FuseRequest {
  /** fuse_in_header.len: the request's bytes, header included (checked <= the chain's readable bytes). */
  len: u32 = 0;
  opcode: u32 = 0;
  unique: u64 = 0;
  nodeid: u64 = 0;
  uid: u32 = 0;
  gid: u32 = 0;
  /** Bytes of op arguments in `args` (for WRITE only the write_in; the data follows in the chain). */
  argsLen: u32 = 0;
  /** Set by the string parsers: where the string is (inside `args`) and its length without the NUL. */
  str: usize = 0;
  strLen: u32 = 0;
  private readonly header: StaticArray<u8> = new StaticArray<u8>(<i32>IN_HEADER_SIZE);
  private readonly scratch: StaticArray<u8> = new StaticArray<u8>(<i32>MAX_ARGS_SIZE);

  /** Address of the arguments (Wasm heap). */
  get args(): usize {
    return changetype<usize>(this.scratch);
  }

  /**
   * Reads the header and arguments of the request in `chain`: 0, or -EINVAL
   * when the header is short, its len disagrees with the chain, or the
   * arguments exceed MAX_ARGS_SIZE. The header fields are set whenever the
   * chain held a whole header (so an error can still name `unique`).
   */
  parse(chain: DescriptorChain): i32 {
    this.len = 0;
    this.opcode = 0;
    this.unique = 0;
    this.nodeid = 0;
    this.argsLen = 0;
    const header = changetype<usize>(this.header);
    if (!chain.readBytes(0, header, IN_HEADER_SIZE)) return -EINVAL;
    this.len = load<u32>(header + IN_LEN);
    this.opcode = load<u32>(header + IN_OPCODE);
    this.unique = load<u64>(header + IN_UNIQUE);
    this.nodeid = load<u64>(header + IN_NODEID);
    this.uid = load<u32>(header + IN_UID);
    this.gid = load<u32>(header + IN_GID);
    if (this.len < IN_HEADER_SIZE || this.len > chain.readableBytes) return -EINVAL;
    let argsLen = this.len - IN_HEADER_SIZE;
    if (this.opcode == FUSE_WRITE && argsLen >= WRITE_IN_SIZE) argsLen = WRITE_IN_SIZE;
    if (argsLen > MAX_ARGS_SIZE) return -EINVAL;
    // Cannot fail: len <= readableBytes.
    chain.readBytes(IN_HEADER_SIZE, this.args, argsLen);
    this.argsLen = argsLen;
    return 0;
  }

  /** Bytes of the request after its arguments: WRITE's data. */
  get dataLen(): u32 {
    return this.len - IN_HEADER_SIZE - this.argsLen;
  }

  u32At(offset: u32): u32 {
    return offset <= this.argsLen - 4 && this.argsLen >= 4 ? load<u32>(this.args + <usize>offset) : 0;
  }

  u64At(offset: u32): u64 {
    return offset <= this.argsLen - 8 && this.argsLen >= 8 ? load<u64>(this.args + <usize>offset) : 0;
  }

  /**
   * The NUL-terminated path component at argument `offset`; with `last` it
   * must end the arguments (so "a\0b\0" is not the name "a"). Returns the
   * offset after its NUL, or -EINVAL ("", ".", "..", '/', no NUL, trailing
   * bytes) or -ENAMETOOLONG (> NAME_MAX bytes). Sets str / strLen.
   */
  component(offset: u32, last: bool): i32 {
    const end = this.string(offset, last, NAME_MAX, -ENAMETOOLONG);
    if (end < 0) return end;
    const name = this.str;
    const n = this.strLen;
    if (n == 1 && load<u8>(name) == DOT) return -EINVAL;
    if (n == 2 && load<u8>(name) == DOT && load<u8>(name + 1) == DOT) return -EINVAL;
    for (let i: u32 = 0; i < n; i++) {
      if (load<u8>(name + <usize>i) == SLASH) return -EINVAL;
    }
    return end;
  }

  /** A symlink target: any bytes but NUL, 1 to SYMLINK_MAX of them (-ENAMETOOLONG beyond). */
  target(offset: u32, last: bool): i32 {
    return this.string(offset, last, SYMLINK_MAX, -ENAMETOOLONG);
  }

  /** An xattr name: 1 to XATTR_NAME_MAX bytes but NUL (-ERANGE beyond, as setxattr(2)). */
  xattrName(offset: u32, last: bool): i32 {
    return this.string(offset, last, XATTR_NAME_MAX, -ERANGE);
  }

  /** The string at `offset` up to its NUL: 1 to `max` bytes, ending the arguments if `last`. */
  private string(offset: u32, last: bool, max: u32, tooLong: i32): i32 {
    const argsLen = this.argsLen;
    if (offset >= argsLen) return -EINVAL;
    const start = this.args + <usize>offset;
    let n: u32 = 0;
    const room = argsLen - offset;
    while (n < room && load<u8>(start + <usize>n) != 0) n++;
    if (n == room || n == 0) return -EINVAL;
    if (n > max) return tooLong;
    const end = offset + n + 1;
    if (last && end != argsLen) return -EINVAL;
    this.str = start;
    this.strLen = n;
    return <i32>end;
  }
}
