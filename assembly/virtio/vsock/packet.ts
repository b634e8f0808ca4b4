// The virtio-vsock packet header (virtio 1.2 spec 5.10.6): 44 bytes,
// little-endian, at the start of every tx and rx buffer, followed by `len`
// payload bytes for RW. Header and payload may be split across descriptors
// in any way, so the header is copied through DescriptorChain byte offsets.
// Every field of a guest header is hostile until validate() accepted it.

import { DescriptorChain } from '../chain';

export const HEADER_SIZE: u32 = 44;
/** The host's CID: where every packet of our guest must go. */
export const HOST_CID: u64 = 2;
/** The only socket type this device supports. */
export const TYPE_STREAM: u16 = 1;
/** Largest payload we accept in, or put into, one packet (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
export const MAX_PAYLOAD: u32 = 64 * 1024;

export const OP_REQUEST: u16 = 1;
export const OP_RESPONSE: u16 = 2;
export const OP_RST: u16 = 3;
export const OP_SHUTDOWN: u16 = 4;
export const OP_RW: u16 = 5;
export const OP_CREDIT_UPDATE: u16 = 6;
export const OP_CREDIT_REQUEST: u16 = 7;

/** SHUTDOWN flags: the sender will receive no more / send no more. */
export const SHUTDOWN_RCV: u32 = 1;
export const SHUTDOWN_SEND: u32 = 2;
export const SHUTDOWN_BOTH: u32 = SHUTDOWN_RCV | SHUTDOWN_SEND;

// Field offsets.
const SRC_CID: usize = 0;
const DST_CID: usize = 8;
const SRC_PORT: usize = 16;
const DST_PORT: usize = 20;
const LEN: usize = 24;
const TYPE: usize = 28;
const OP: usize = 30;
const FLAGS: usize = 32;
const BUF_ALLOC: usize = 36;
const FWD_CNT: usize = 40;

/** Why validate() refused a guest header. */
export const enum HeaderError {
  NONE = 0,
  /** src_cid is not the guest's CID or dst_cid not the host's: not a packet of this guest to us. */
  WRONG_CID = 1,
  WRONG_TYPE = 2,
  /** len exceeds MAX_PAYLOAD or the bytes the chain holds after the header. */
  BAD_LENGTH = 3,
  UNKNOWN_OP = 4,
}

export class PacketHeader {
  srcCid: u64 = 0;
  dstCid: u64 = 0;
  srcPort: u32 = 0;
  dstPort: u32 = 0;
  len: u32 = 0;
  type: u16 = 0;
  op: u16 = 0;
  flags: u32 = 0;
  bufAlloc: u32 = 0;
  fwdCnt: u32 = 0;
  /** HEADER_SIZE bytes the header is copied through. */
  private readonly raw: StaticArray<u8> = new StaticArray<u8>(<i32>HEADER_SIZE);

  /** Loads the header from the start of `chain`'s readable area; false if it holds fewer than HEADER_SIZE bytes. */
  readFrom(chain: DescriptorChain): bool {
    const raw = changetype<usize>(this.raw);
    if (!chain.readBytes(0, raw, HEADER_SIZE)) return false;
    this.srcCid = load<u64>(raw + SRC_CID);
    this.dstCid = load<u64>(raw + DST_CID);
    this.srcPort = load<u32>(raw + SRC_PORT);
    this.dstPort = load<u32>(raw + DST_PORT);
    this.len = load<u32>(raw + LEN);
    this.type = load<u16>(raw + TYPE);
    this.op = load<u16>(raw + OP);
    this.flags = load<u32>(raw + FLAGS);
    this.bufAlloc = load<u32>(raw + BUF_ALLOC);
    this.fwdCnt = load<u32>(raw + FWD_CNT);
    return true;
  }

  /**
   * Checks a header readFrom() loaded from a tx chain of `chainBytes`
   * (>= HEADER_SIZE) readable bytes, sent by the guest with CID `guestCid`.
   */
  validate(guestCid: u64, chainBytes: u32): HeaderError {
    if (this.srcCid != guestCid || this.dstCid != HOST_CID) return HeaderError.WRONG_CID;
    if (this.type != TYPE_STREAM) return HeaderError.WRONG_TYPE;
    if (this.len > MAX_PAYLOAD || this.len > chainBytes - HEADER_SIZE) return HeaderError.BAD_LENGTH;
    if (this.op < OP_REQUEST || this.op > OP_CREDIT_REQUEST) return HeaderError.UNKNOWN_OP;
    return HeaderError.NONE;
  }

  /** Sets every field for a packet from host port `localPort` to guest port `guestPort` of guest `guestCid`. */
  set(
    guestCid: u64,
    localPort: u32,
    guestPort: u32,
    op: u16,
    len: u32,
    flags: u32,
    bufAlloc: u32,
    fwdCnt: u32,
  ): void {
    this.srcCid = HOST_CID;
    this.dstCid = guestCid;
    this.srcPort = localPort;
    this.dstPort = guestPort;
    this.len = len;
    this.type = TYPE_STREAM;
    this.op = op;
    this.flags = flags;
    this.bufAlloc = bufAlloc;
    this.fwdCnt = fwdCnt;
  }

  /** Stores the header at the start of `chain`'s writable area; false if it has fewer than HEADER_SIZE bytes. */
  writeTo(chain: DescriptorChain): bool {
    const raw = changetype<usize>(this.raw);
    store<u64>(raw + SRC_CID, this.srcCid);
    store<u64>(raw + DST_CID, this.dstCid);
    store<u32>(raw + SRC_PORT, this.srcPort);
    store<u32>(raw + DST_PORT, this.dstPort);
    store<u32>(raw + LEN, this.len);
    store<u16>(raw + TYPE, this.type);
    store<u16>(raw + OP, this.op);
    store<u32>(raw + FLAGS, this.flags);
    store<u32>(raw + BUF_ALLOC, this.bufAlloc);
    store<u32>(raw + FWD_CNT, this.fwdCnt);
    return chain.writeBytes(0, raw, HEADER_SIZE);
  }
}
