// One virtio-blk request (virtio 1.x spec 5.2.6) read out of a descriptor
// chain and checked against the disk: the 16-byte header (type, reserved,
// sector) at the start of the readable area, the data after it (requests the
// device reads) or at the start of the writable area (requests it fills), and
// the status byte, which is the chain's last writable byte.

import { DescriptorChain, IoVecList } from '../chain';

// Request types.
export const VIRTIO_BLK_T_IN: u32 = 0;
export const VIRTIO_BLK_T_OUT: u32 = 1;
export const VIRTIO_BLK_T_FLUSH: u32 = 4;
export const VIRTIO_BLK_T_GET_ID: u32 = 8;
export const VIRTIO_BLK_T_DISCARD: u32 = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES: u32 = 13;

// Status byte values.
export const VIRTIO_BLK_S_OK: u8 = 0;
export const VIRTIO_BLK_S_IOERR: u8 = 1;
export const VIRTIO_BLK_S_UNSUPP: u8 = 2;

export const SECTOR_SHIFT: u64 = 9;
export const SECTOR_SIZE: u32 = 1 << <u32>SECTOR_SHIFT;

/**
 * Largest discard / write-zeroes range in sectors (config space): 4 GiB - 512
 * bytes, so the byte length the host sees fits in 32 bits.
 */
export const MAX_DISCARD_SECTORS: u32 = u32.MAX_VALUE >> <u32>SECTOR_SHIFT;
/** Discard and write-zeroes requests carry exactly one range (config max_discard_seg / max_write_zeroes_seg). */
export const MAX_DISCARD_SEGMENTS: u32 = 1;

const HEADER_SIZE: u32 = 16;
const HEADER_TYPE: usize = 0;
const HEADER_SECTOR: usize = 8;
/** Discard / write-zeroes range: sector u64 | num_sectors u32 | flags u32. */
const SEGMENT_SIZE: u32 = 16;
const SEGMENT_SECTOR: usize = 0;
const SEGMENT_SECTORS: usize = 8;
const SEGMENT_FLAGS: usize = 12;
/** The only segment flag: write zeroes may deallocate. Not allowed on discard (spec 5.2.6.2). */
const SEGMENT_F_UNMAP: u32 = 1;

/** parse() result for a chain without a writable byte for the status: the driver broke the protocol. */
export const NO_STATUS_BYTE: i32 = -1;

/** The request being served, reused for every chain. */
export class BlockRequest {
  type: u32 = 0;
  /** First sector the request addresses (of the discard / write-zeroes range for those types). */
  sector: u64 = 0;
  /** Sectors a discard or write zeroes covers. */
  sectors: u64 = 0;
  /** Write zeroes may deallocate the range. */
  unmap: bool = false;
  /** Data bytes: after the header in the readable area (OUT), before the status byte in the writable area (IN, GET_ID). */
  dataLength: u32 = 0;
  /** Where the data starts in its area: after the header for OUT, at 0 in the writable area otherwise. */
  dataOffset: u32 = 0;
  /** Guest address of the status byte. */
  statusAddr: u64 = 0;
  private readonly scratch: StaticArray<u8> = new StaticArray<u8>(HEADER_SIZE);
  private readonly statusPiece: IoVecList = new IoVecList();

  /**
   * Reads the request in `chain` and checks it against a disk of `capacity`
   * sectors: NO_STATUS_BYTE if there is nowhere to put the status, otherwise
   * VIRTIO_BLK_S_OK when the device should serve it, or the error status to
   * complete it with at once.
   */
  parse(chain: DescriptorChain, capacity: u64, readOnly: bool): i32 {
    if (chain.writableBytes == 0) return NO_STATUS_BYTE;
    this.statusPiece.clear();
    // Cannot fail: the byte is inside the writable area.
    chain.writableSlice(chain.writableBytes - 1, 1, this.statusPiece);
    this.statusAddr = this.statusPiece.addr(0);
    this.dataLength = 0;
    this.dataOffset = 0;
    this.sectors = 0;
    this.unmap = false;

    const header = changetype<usize>(this.scratch);
    if (!chain.readBytes(0, header, HEADER_SIZE)) return VIRTIO_BLK_S_IOERR;
    this.type = load<u32>(header + HEADER_TYPE);
    this.sector = load<u64>(header + HEADER_SECTOR);
    switch (this.type) {
      case VIRTIO_BLK_T_IN:
        this.dataLength = chain.writableBytes - 1;
        return this.checkTransfer(capacity);
      case VIRTIO_BLK_T_OUT:
        if (readOnly) return VIRTIO_BLK_S_IOERR;
        this.dataOffset = HEADER_SIZE;
        this.dataLength = chain.readableBytes - HEADER_SIZE;
        return this.checkTransfer(capacity);
      case VIRTIO_BLK_T_FLUSH:
        return VIRTIO_BLK_S_OK;
      case VIRTIO_BLK_T_GET_ID:
        this.dataLength = chain.writableBytes - 1;
        return VIRTIO_BLK_S_OK;
      case VIRTIO_BLK_T_DISCARD:
      case VIRTIO_BLK_T_WRITE_ZEROES:
        if (readOnly) return VIRTIO_BLK_S_IOERR;
        return this.parseSegment(chain, capacity);
    }
    return VIRTIO_BLK_S_UNSUPP;
  }

  /** Reads and writes: whole sectors, all on the disk. */
  private checkTransfer(capacity: u64): i32 {
    if (this.dataLength & (SECTOR_SIZE - 1)) return VIRTIO_BLK_S_IOERR;
    return inDisk(this.sector, <u64>this.dataLength >> SECTOR_SHIFT, capacity) ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
  }

  /** The one range of a discard or write zeroes, right after the header. */
  private parseSegment(chain: DescriptorChain, capacity: u64): i32 {
    if (chain.readableBytes - HEADER_SIZE != SEGMENT_SIZE * MAX_DISCARD_SEGMENTS) return VIRTIO_BLK_S_IOERR;
    const segment = changetype<usize>(this.scratch);
    chain.readBytes(HEADER_SIZE, segment, SEGMENT_SIZE);
    const flags = load<u32>(segment + SEGMENT_FLAGS);
    const allowed = this.type == VIRTIO_BLK_T_WRITE_ZEROES ? SEGMENT_F_UNMAP : 0;
    if (flags & ~allowed) return VIRTIO_BLK_S_UNSUPP;
    this.unmap = (flags & SEGMENT_F_UNMAP) != 0;
    this.sector = load<u64>(segment + SEGMENT_SECTOR);
    const sectors = load<u32>(segment + SEGMENT_SECTORS);
    this.sectors = sectors;
    if (sectors > MAX_DISCARD_SECTORS) return VIRTIO_BLK_S_IOERR;
    return inDisk(this.sector, sectors, capacity) ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
  }
}

/** [sector, sector + count) lies within a disk of `capacity` sectors (computed without overflow). */
function inDisk(sector: u64, count: u64, capacity: u64): bool {
  return sector <= capacity && count <= capacity - sector;
}
