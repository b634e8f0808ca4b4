// The FUSE server of one share: one method per opcode, each checking its
// arguments, mapping the guest's nodeids and fhs to host handles (inode and
// file tables) and calling the host through the fs imports. A method returns
// the payload bytes it wrote after the out header, or -errno; serve() then
// writes the header. Every check happens before a host call, and replies
// are known to fit before anything changes on the host.

import {
  fsCreate,
  fsFallocate,
  fsForget,
  fsFsync,
  fsGetattr,
  fsGetxattr,
  fsLink,
  fsListxattr,
  fsLookup,
  fsLseek,
  fsMkdir,
  fsMknod,
  fsOpen,
  fsRead,
  fsReaddir,
  fsReadlink,
  fsRelease,
  fsRemovexattr,
  fsRename,
  fsSetattr,
  fsSetxattr,
  fsStatfs,
  fsSymlink,
  fsUnlink,
  fsWrite,
} from '../../env';
import { DescriptorChain, IoVecList } from '../chain';
import { MAX_QUEUE_SIZE } from '../features';
import * as abi from './abi';
import { EINVAL, EIO, ENFILE, ENODATA, ENOSYS, EOPNOTSUPP, EPERM, EPROTO, ERANGE, EROFS, ESTALE } from './abi';
import { FileTable } from './file_table';
import { InodeTable } from './inode_table';
import { replyFits, ReplyBuffer, writeOutHeader, writePayload } from './reply';
import { FuseRequest } from './request';

/** How long the guest may cache names and attributes, by cache mode (none, auto, always). */
export const CACHE_NONE: u32 = 0;
export const CACHE_AUTO: u32 = 1;
export const CACHE_ALWAYS: u32 = 2;

/** Host data (readlink, xattrs, directory entries) lands here before Wasm checks and copies it. */
const DATA_BUFFER_SIZE: u32 = abi.XATTR_SIZE_MAX;
const DOT: u8 = 0x2e;
/** Room for one direntplus: entry_out, then the dirent. */
const DIRENTPLUS_HEAD: u32 = abi.ENTRY_OUT_SIZE + abi.DIRENT_SIZE;

export class FuseServer {
  /** INIT succeeded (and no DESTROY since): other requests are served. */
  initialized: bool = false;
  /** The minor version INIT agreed on. */
  minor: u32 = 0;
  private readonly inodes: InodeTable = new InodeTable();
  private readonly files: FileTable = new FileTable();
  private readonly request: FuseRequest = new FuseRequest();
  private readonly reply: ReplyBuffer = new ReplyBuffer();
  private readonly stat: StaticArray<u8> = new StaticArray<u8>(<i32>abi.STAT_SIZE);
  private readonly attr: StaticArray<u8> = new StaticArray<u8>(<i32>abi.ATTR_RECORD_SIZE);
  private readonly data: StaticArray<u8> = new StaticArray<u8>(<i32>DATA_BUFFER_SIZE);
  private readonly pieces: IoVecList = new IoVecList();
  /** The pieces as the host reads them: {u64 addr, u64 len} each. */
  private readonly iov: StaticArray<u64> = new StaticArray<u64>(2 * <i32>MAX_QUEUE_SIZE);

  constructor(
    readonly share: u32,
    readonly readOnly: bool,
    readonly cacheMode: u32,
  ) {}

  /**
   * Serves the request in `chain` and writes its reply: the bytes to report
   * as used, or -1 when the chain has no room for even the reply header.
   */
  serve(chain: DescriptorChain): i32 {
    const request = this.request;
    let result = request.parse(chain);
    const opcode = request.opcode;
    if (isOneWay(opcode)) {
      if (result == 0 && this.initialized) this.oneWay(opcode);
      return 0;
    }
    if (result == 0) {
      if (opcode == abi.FUSE_INIT) result = this.init(chain);
      else if (!this.initialized) result = -EIO;
      else if (this.readOnly && modifies(opcode)) result = -EROFS;
      else result = this.dispatch(opcode, chain);
    }
    return writeOutHeader(chain, request.unique, result);
  }

  /** Closes every host handle the guest held (DESTROY, device reset). */
  forgetAll(): void {
    const inodes = this.inodes;
    for (let slot = 1; slot < inodes.capacity; slot++) {
      if (inodes.isUsed(slot)) fsForget(this.share, inodes.node(slot));
    }
    inodes.clear();
    this.releaseFiles();
  }

  /** Forgets the tables without closing anything: after a restore the host's handles are not ours any more. */
  dropAll(): void {
    this.inodes.clear();
    this.files.clear();
  }

  private releaseFiles(): void {
    const files = this.files;
    for (let slot = 0; slot < files.capacity; slot++) {
      if (files.isUsed(slot)) fsRelease(this.share, files.file(slot));
    }
    files.clear();
  }

  private dispatch(opcode: u32, chain: DescriptorChain): i32 {
    switch (opcode) {
      case abi.FUSE_LOOKUP:
        return this.lookup(chain);
      case abi.FUSE_GETATTR:
        return this.getattr(chain);
      case abi.FUSE_SETATTR:
        return this.setattr(chain);
      case abi.FUSE_READLINK:
        return this.readlink(chain);
      case abi.FUSE_SYMLINK:
        return this.symlink(chain);
      case abi.FUSE_MKNOD:
        return this.mknod(chain);
      case abi.FUSE_MKDIR:
        return this.mkdir(chain);
      case abi.FUSE_UNLINK:
        return this.unlink(false);
      case abi.FUSE_RMDIR:
        return this.unlink(true);
      case abi.FUSE_RENAME:
        return this.rename(false);
      case abi.FUSE_RENAME2:
        return this.rename(true);
      case abi.FUSE_LINK:
        return this.link(chain);
      case abi.FUSE_OPEN:
        return this.open(chain, false);
      case abi.FUSE_OPENDIR:
        return this.open(chain, true);
      case abi.FUSE_READ:
        return this.read(chain);
      case abi.FUSE_WRITE:
        return this.write(chain);
      case abi.FUSE_STATFS:
        return this.statfs(chain);
      case abi.FUSE_RELEASE:
      case abi.FUSE_RELEASEDIR:
        return this.release();
      case abi.FUSE_FLUSH:
        return this.request.argsLen < abi.FLUSH_IN_SIZE ? -EINVAL : 0;
      case abi.FUSE_FSYNC:
      case abi.FUSE_FSYNCDIR:
        return this.fsync();
      case abi.FUSE_SETXATTR:
        return this.setxattr();
      case abi.FUSE_GETXATTR:
        return this.getxattr(chain);
      case abi.FUSE_LISTXATTR:
        return this.listxattr(chain);
      case abi.FUSE_REMOVEXATTR:
        return this.removexattr();
      case abi.FUSE_CREATE:
        return this.create(chain);
      case abi.FUSE_READDIR:
        return this.readdir(chain, false);
      case abi.FUSE_READDIRPLUS:
        return this.readdir(chain, true);
      case abi.FUSE_FALLOCATE:
        return this.fallocate();
      case abi.FUSE_LSEEK:
        return this.lseek(chain);
      case abi.FUSE_DESTROY:
        this.forgetAll();
        this.initialized = false;
        return 0;
    }
    // Locks, ACCESS, IOCTL, POLL, BMAP, mappings, ...: the guest kernel copes on its own.
    return -ENOSYS;
  }

  // --- session ---

  private init(chain: DescriptorChain): i32 {
    const request = this.request;
    if (this.initialized) return -EIO;
    if (request.argsLen < 16) return -EINVAL;
    const major = request.u32At(0);
    const minor = request.u32At(4);
    if (major != abi.FUSE_KERNEL_VERSION || minor < abi.FUSE_MIN_MINOR_VERSION) return -EPROTO;
    if (!replyFits(chain, abi.INIT_OUT_SIZE)) return -EINVAL;
    this.minor = min(minor, abi.FUSE_KERNEL_MINOR_VERSION);
    const out = this.reply.begin(abi.INIT_OUT_SIZE);
    store<u32>(out, abi.FUSE_KERNEL_VERSION, 0);
    store<u32>(out, this.minor, 4);
    store<u32>(out, request.u32At(8), 8); // max_readahead: the guest's
    store<u32>(out, request.u32At(12) & abi.INIT_FLAGS_OFFERED, 12);
    store<u16>(out, <u16>abi.MAX_BACKGROUND, 16);
    store<u16>(out, <u16>abi.CONGESTION_THRESHOLD, 18);
    store<u32>(out, abi.MAX_WRITE, 20);
    store<u32>(out, 1, 24); // time_gran: nanoseconds
    store<u16>(out, <u16>abi.MAX_PAGES, 28);
    this.initialized = true;
    return writePayload(chain, out, abi.INIT_OUT_SIZE);
  }

  /** FORGET and BATCH_FORGET (INTERRUPT needs nothing: every request is answered at once). */
  private oneWay(opcode: u32): void {
    const request = this.request;
    if (opcode == abi.FUSE_FORGET) {
      if (request.argsLen >= abi.FORGET_IN_SIZE) this.forget(request.nodeid, request.u64At(0));
      return;
    }
    if (opcode != abi.FUSE_BATCH_FORGET || request.argsLen < abi.BATCH_FORGET_IN_SIZE) return;
    const count = <u64>request.u32At(0);
    // Only the entries the request holds.
    const held = <u64>(request.argsLen - abi.BATCH_FORGET_IN_SIZE) / <u64>abi.FORGET_ONE_SIZE;
    const n = <u32>min(count, held);
    for (let i: u32 = 0; i < n; i++) {
      const at = abi.BATCH_FORGET_IN_SIZE + i * abi.FORGET_ONE_SIZE;
      this.forget(request.u64At(at), request.u64At(at + 8));
    }
  }

  /** The guest dropped `count` lookups of `nodeid`; unknown nodeids and the root are ignored. */
  private forget(nodeid: u64, count: u64): void {
    const slot = this.inodes.find(nodeid);
    if (slot <= 0) return;
    const node = this.inodes.node(slot);
    if (this.inodes.forget(slot, count)) fsForget(this.share, node);
  }

  // --- names and attributes ---

  private lookup(chain: DescriptorChain): i32 {
    const request = this.request;
    const parent = this.nodeOf(request.nodeid);
    if (parent < 0) return <i32>parent;
    const end = request.component(0, true);
    if (end < 0) return end;
    if (!replyFits(chain, abi.ENTRY_OUT_SIZE)) return -EINVAL;
    return this.entry(chain, fsLookup(this.share, <u32>parent, request.str, request.strLen, this.statPtr));
  }

  private getattr(chain: DescriptorChain): i32 {
    if (this.request.argsLen < abi.GETATTR_IN_SIZE) return -EINVAL;
    const node = this.nodeOf(this.request.nodeid);
    if (node < 0) return <i32>node;
    if (!replyFits(chain, abi.ATTR_OUT_SIZE)) return -EINVAL;
    return this.attrOut(chain, fsGetattr(this.share, <u32>node, this.statPtr));
  }

  private setattr(chain: DescriptorChain): i32 {
    const request = this.request;
    if (request.argsLen < abi.SETATTR_IN_SIZE) return -EINVAL;
    const node = this.nodeOf(request.nodeid);
    if (node < 0) return <i32>node;
    const valid = request.u32At(abi.SETATTR_VALID);
    let file: i32 = -1;
    if (valid & abi.FATTR_FH) {
      const slot = this.files.find(request.u64At(abi.SETATTR_FH));
      if (slot < 0) return -ESTALE;
      file = <i32>this.files.file(slot);
    }
    if (!replyFits(chain, abi.ATTR_OUT_SIZE)) return -EINVAL;
    const attr = changetype<usize>(this.attr);
    store<u32>(attr, valid & abi.FATTR_HOST_BITS, 0);
    store<u32>(attr, request.u32At(abi.SETATTR_MODE) & abi.MODE_PERMISSIONS, 4);
    store<u32>(attr, request.u32At(abi.SETATTR_UID), 8);
    store<u32>(attr, request.u32At(abi.SETATTR_GID), 12);
    store<u64>(attr, request.u64At(abi.SETATTR_SIZE), 16);
    store<u64>(attr, request.u64At(abi.SETATTR_ATIME), 24);
    store<u64>(attr, request.u64At(abi.SETATTR_MTIME), 32);
    store<u32>(attr, request.u32At(abi.SETATTR_ATIMENSEC), 40);
    store<u32>(attr, request.u32At(abi.SETATTR_MTIMENSEC), 44);
    if ((valid & abi.FATTR_SIZE) && request.u64At(abi.SETATTR_SIZE) > <u64>i64.MAX_VALUE) return -EINVAL;
    return this.attrOut(chain, fsSetattr(this.share, <u32>node, file, attr, this.statPtr));
  }

  private readlink(chain: DescriptorChain): i32 {
    const node = this.nodeOf(this.request.nodeid);
    if (node < 0) return <i32>node;
    const data = changetype<usize>(this.data);
    const n = fsReadlink(this.share, <u32>node, data, abi.SYMLINK_MAX);
    if (n < 0) return n;
    if (<u32>n > abi.SYMLINK_MAX) return -EIO;
    return writePayload(chain, data, <u32>n);
  }

  private symlink(chain: DescriptorChain): i32 {
    const request = this.request;
    const parent = this.nodeOf(request.nodeid);
    if (parent < 0) return <i32>parent;
    const nameEnd = request.component(0, false);
    if (nameEnd < 0) return nameEnd;
    const name = request.str;
    const nameLen = request.strLen;
    const end = request.target(<u32>nameEnd, true);
    if (end < 0) return end;
    if (!this.canAddEntry(chain)) return this.addEntryError(chain);
    const result = fsSymlink(
      this.share, <u32>parent, name, nameLen, request.str, request.strLen, request.uid, request.gid, this.statPtr,
    );
    return this.entry(chain, result);
  }

  private mknod(chain: DescriptorChain): i32 {
    const request = this.request;
    if (request.argsLen < abi.MKNOD_IN_SIZE) return -EINVAL;
    const parent = this.nodeOf(request.nodeid);
    if (parent < 0) return <i32>parent;
    const end = request.component(abi.MKNOD_IN_SIZE, true);
    if (end < 0) return end;
    if (!this.canAddEntry(chain)) return this.addEntryError(chain);
    const mode = request.u32At(0) & (abi.S_IFMT | abi.MODE_PERMISSIONS);
    const rdev = request.u32At(4);
    const result = fsMknod(
      this.share, <u32>parent, request.str, request.strLen, mode, rdev, request.uid, request.gid, this.statPtr,
    );
    return this.entry(chain, result);
  }

  private mkdir(chain: DescriptorChain): i32 {
    const request = this.request;
    if (request.argsLen < abi.MKDIR_IN_SIZE) return -EINVAL;
    const parent = this.nodeOf(request.nodeid);
    if (parent < 0) return <i32>parent;
    const end = request.component(abi.MKDIR_IN_SIZE, true);
    if (end < 0) return end;
    if (!this.canAddEntry(chain)) return this.addEntryError(chain);
    const mode = request.u32At(0) & abi.MODE_PERMISSIONS;
    const result = fsMkdir(
      this.share, <u32>parent, request.str, request.strLen, mode, request.uid, request.gid, this.statPtr,
    );
    return this.entry(chain, result);
  }

  private link(chain: DescriptorChain): i32 {
    const request = this.request;
    if (request.argsLen < abi.LINK_IN_SIZE) return -EINVAL;
    const newParent = this.nodeOf(request.nodeid);
    if (newParent < 0) return <i32>newParent;
    const node = this.nodeOf(request.u64At(0));
    if (node < 0) return <i32>node;
    const end = request.component(abi.LINK_IN_SIZE, true);
    if (end < 0) return end;
    if (!replyFits(chain, abi.ENTRY_OUT_SIZE)) return -EINVAL;
    return this.entry(chain, fsLink(this.share, <u32>node, <u32>newParent, request.str, request.strLen, this.statPtr));
  }

  private unlink(directory: bool): i32 {
    const request = this.request;
    const parent = this.nodeOf(request.nodeid);
    if (parent < 0) return <i32>parent;
    const end = request.component(0, true);
    if (end < 0) return end;
    return fsUnlink(this.share, <u32>parent, request.str, request.strLen, directory);
  }

  private rename(withFlags: bool): i32 {
    const request = this.request;
    const argsSize = withFlags ? abi.RENAME2_IN_SIZE : abi.RENAME_IN_SIZE;
    if (request.argsLen < argsSize) return -EINVAL;
    const flags = withFlags ? request.u32At(8) : 0;
    // RENAME_WHITEOUT and unknown bits are refused; NOREPLACE with EXCHANGE makes no sense.
    if (flags & ~(abi.RENAME_NOREPLACE | abi.RENAME_EXCHANGE)) return -EINVAL;
    if (flags == (abi.RENAME_NOREPLACE | abi.RENAME_EXCHANGE)) return -EINVAL;
    const oldParent = this.nodeOf(request.nodeid);
    if (oldParent < 0) return <i32>oldParent;
    const newParent = this.nodeOf(request.u64At(0));
    if (newParent < 0) return <i32>newParent;
    const oldEnd = request.component(argsSize, false);
    if (oldEnd < 0) return oldEnd;
    const oldName = request.str;
    const oldLen = request.strLen;
    const end = request.component(<u32>oldEnd, true);
    if (end < 0) return end;
    return fsRename(this.share, <u32>oldParent, oldName, oldLen, <u32>newParent, request.str, request.strLen, flags);
  }

  private statfs(chain: DescriptorChain): i32 {
    const node = this.nodeOf(this.request.nodeid);
    if (node < 0) return <i32>node;
    if (!replyFits(chain, abi.STATFS_OUT_SIZE)) return -EINVAL;
    const out = this.reply.begin(abi.STATFS_OUT_SIZE);
    const result = fsStatfs(this.share, <u32>node, out);
    if (result < 0) return result;
    return writePayload(chain, out, abi.STATFS_OUT_SIZE);
  }

  // --- files ---

  private open(chain: DescriptorChain, directory: bool): i32 {
    const request = this.request;
    if (request.argsLen < abi.OPEN_IN_SIZE) return -EINVAL;
    const node = this.nodeOf(request.nodeid);
    if (node < 0) return <i32>node;
    const flags = directory ? abi.O_RDONLY | abi.O_DIRECTORY : request.u32At(0) & abi.OPEN_FLAGS_PASSED;
    if (this.readOnly && writes(flags)) return -EROFS;
    if (!replyFits(chain, abi.OPEN_OUT_SIZE)) return -EINVAL;
    if (this.files.isFull) return -ENFILE;
    const file = fsOpen(this.share, <u32>node, flags);
    if (file < 0) return file;
    const out = this.reply.begin(abi.OPEN_OUT_SIZE);
    this.openOut(out, <u32>file, directory);
    return writePayload(chain, out, abi.OPEN_OUT_SIZE);
  }

  /**
   * CREATE: the entry, then an open file of it. An open that fails takes the
   * new lookup back, so the guest holds nothing it was not told about.
   */
  private create(chain: DescriptorChain): i32 {
    const request = this.request;
    if (request.argsLen < abi.CREATE_IN_SIZE) return -EINVAL;
    const parent = this.nodeOf(request.nodeid);
    if (parent < 0) return <i32>parent;
    const end = request.component(abi.CREATE_IN_SIZE, true);
    if (end < 0) return end;
    const rawFlags = request.u32At(0);
    const flags = rawFlags & abi.OPEN_FLAGS_PASSED & ~abi.O_DIRECTORY;
    if (!replyFits(chain, abi.ENTRY_OUT_SIZE + abi.OPEN_OUT_SIZE)) return -EINVAL;
    if (this.inodes.isFull || this.files.isFull) return -ENFILE;
    const mode = request.u32At(4) & abi.MODE_PERMISSIONS;
    const exclusive = (rawFlags & abi.O_EXCL) != 0;
    const node = fsCreate(
      this.share, <u32>parent, request.str, request.strLen, mode, exclusive, request.uid, request.gid, this.statPtr,
    );
    if (node < 0) return node;
    const slot = this.addNode(<u32>node);
    if (slot < 0) return slot;
    const created = this.inodes.node(slot);
    const file = fsOpen(this.share, created, flags);
    if (file < 0) {
      if (this.inodes.forget(slot, 1)) fsForget(this.share, created);
      return file;
    }
    const out = this.reply.begin(abi.ENTRY_OUT_SIZE + abi.OPEN_OUT_SIZE);
    this.entryOut(out, slot);
    this.openOut(out + abi.ENTRY_OUT_SIZE, <u32>file, false);
    return writePayload(chain, out, abi.ENTRY_OUT_SIZE + abi.OPEN_OUT_SIZE);
  }

  private release(): i32 {
    const request = this.request;
    if (request.argsLen < abi.RELEASE_IN_SIZE) return -EINVAL;
    const slot = this.files.find(request.u64At(0));
    if (slot < 0) return -ESTALE;
    fsRelease(this.share, this.files.file(slot));
    this.files.remove(slot);
    return 0;
  }

  private read(chain: DescriptorChain): i32 {
    const request = this.request;
    if (request.argsLen < abi.READ_IN_SIZE) return -EINVAL;
    const file = this.fileOf(request.u64At(0));
    if (file < 0) return <i32>file;
    const offset = request.u64At(8);
    const size = request.u32At(16);
    if (size > abi.MAX_WRITE || offset > <u64>i64.MAX_VALUE) return -EINVAL;
    if (!replyFits(chain, size)) return -EINVAL;
    if (size == 0) return 0;
    const pieces = this.pieces;
    pieces.clear();
    if (!chain.writableSlice(abi.OUT_HEADER_SIZE, size, pieces)) return -EINVAL;
    const n = fsRead(this.share, <u32>file, offset, this.iovOf(pieces), <u32>pieces.count);
    if (n < 0) return n;
    return <u32>n > size ? -EIO : n;
  }

  private write(chain: DescriptorChain): i32 {
    const request = this.request;
    if (request.argsLen < abi.WRITE_IN_SIZE) return -EINVAL;
    const file = this.fileOf(request.u64At(0));
    if (file < 0) return <i32>file;
    const offset = request.u64At(8);
    const size = request.u32At(16);
    if (size > abi.MAX_WRITE || size != request.dataLen || offset > <u64>i64.MAX_VALUE) return -EINVAL;
    if (!replyFits(chain, abi.WORD_OUT_SIZE)) return -EINVAL;
    let n: i32 = 0;
    if (size > 0) {
      const pieces = this.pieces;
      pieces.clear();
      if (!chain.readableSlice(abi.IN_HEADER_SIZE + abi.WRITE_IN_SIZE, size, pieces)) return -EINVAL;
      n = fsWrite(this.share, <u32>file, offset, this.iovOf(pieces), <u32>pieces.count);
      if (n < 0) return n;
      if (<u32>n > size) return -EIO;
    }
    const out = this.reply.begin(abi.WORD_OUT_SIZE);
    store<u32>(out, <u32>n);
    return writePayload(chain, out, abi.WORD_OUT_SIZE);
  }

  private fsync(): i32 {
    const request = this.request;
    if (request.argsLen < abi.FSYNC_IN_SIZE) return -EINVAL;
    const file = this.fileOf(request.u64At(0));
    if (file < 0) return <i32>file;
    return fsFsync(this.share, <u32>file, (request.u32At(8) & 1) != 0);
  }

  private fallocate(): i32 {
    const request = this.request;
    if (request.argsLen < abi.FALLOCATE_IN_SIZE) return -EINVAL;
    const file = this.fileOf(request.u64At(0));
    if (file < 0) return <i32>file;
    const offset = request.u64At(8);
    const length = request.u64At(16);
    const mode = request.u32At(24);
    if (mode & ~abi.FALLOC_MODES) return -EOPNOTSUPP;
    const max = <u64>i64.MAX_VALUE;
    if (length == 0 || offset > max || length > max - offset) return -EINVAL;
    return fsFallocate(this.share, <u32>file, mode, offset, length);
  }

  private lseek(chain: DescriptorChain): i32 {
    const request = this.request;
    if (request.argsLen < abi.LSEEK_IN_SIZE) return -EINVAL;
    const file = this.fileOf(request.u64At(0));
    if (file < 0) return <i32>file;
    const offset = request.u64At(8);
    const whence = request.u32At(16);
    if ((whence != abi.SEEK_DATA && whence != abi.SEEK_HOLE) || offset > <u64>i64.MAX_VALUE) return -EINVAL;
    if (!replyFits(chain, abi.WORD_OUT_SIZE)) return -EINVAL;
    const result = fsLseek(this.share, <u32>file, <i64>offset, whence);
    if (result < 0) return result < -4095 ? -EIO : <i32>result;
    const out = this.reply.begin(abi.WORD_OUT_SIZE);
    store<i64>(out, result);
    return writePayload(chain, out, abi.WORD_OUT_SIZE);
  }

  /**
   * READDIR / READDIRPLUS: the host's entries from cookie `offset`, checked
   * (validEntries) before any is copied; READDIRPLUS looks each up but "."
   * and "..".
   * Stops at the first entry that does not fit the guest's size: the guest
   * continues from the last cookie it got.
   */
  private readdir(chain: DescriptorChain, plus: bool): i32 {
    const request = this.request;
    if (request.argsLen < abi.READ_IN_SIZE) return -EINVAL;
    const dir = plus ? this.nodeOf(request.nodeid) : 0;
    if (dir < 0) return <i32>dir;
    const file = this.fileOf(request.u64At(0));
    if (file < 0) return <i32>file;
    const offset = request.u64At(8);
    const size = request.u32At(16);
    if (!replyFits(chain, 0)) return -EINVAL;
    const room = min(size, chain.writableBytes - abi.OUT_HEADER_SIZE);
    const data = changetype<usize>(this.data);
    const got = fsReaddir(this.share, <u32>file, offset, data, min(room, DATA_BUFFER_SIZE));
    if (got < 0) return got;
    // All entries are checked before any is looked up, so an error leaves no lookup the guest is not told of.
    if (<u32>got > DATA_BUFFER_SIZE || !validEntries(data, <u32>got)) return -EIO;
    let at: u32 = 0;
    let written: u32 = 0;
    while (at < <u32>got) {
      const entry = data + <usize>at;
      const nameLen = load<u32>(entry + abi.DIRENT_NAMELEN);
      const recordLen = align8(abi.DIRENT_SIZE + nameLen);
      const outLen = plus ? align8(DIRENTPLUS_HEAD + nameLen) : recordLen;
      if (outLen > room - written) break;
      const dirent = this.reply.begin(DIRENTPLUS_HEAD);
      const head = plus ? abi.ENTRY_OUT_SIZE : 0;
      if (plus) {
        const looked = this.plusEntry(<u32>dir, entry + abi.DIRENT_SIZE, nameLen, dirent);
        // Inode table full: the guest gets what is done and retries the rest later.
        if (looked < 0) {
          if (written > 0) break;
          return looked;
        }
      }
      memory.copy(dirent + head, entry, abi.DIRENT_SIZE);
      const target = abi.OUT_HEADER_SIZE + written;
      chain.writeBytes(target, dirent, head + abi.DIRENT_SIZE);
      chain.writeBytes(target + head + abi.DIRENT_SIZE, entry + abi.DIRENT_SIZE, nameLen);
      // Zero the record's padding rather than leave guest bytes in it.
      const pad = outLen - head - abi.DIRENT_SIZE - nameLen;
      if (pad > 0) chain.writeBytes(target + outLen - pad, this.reply.begin(8), pad);
      written += outLen;
      at += recordLen;
    }
    // The first entry did not fit at all: the guest's buffer is too small to make progress.
    if (written == 0 && at < <u32>got) return -EINVAL;
    return <i32>written;
  }

  /**
   * The entry_out part of a READDIRPLUS record at `out` for `name` in `dir`:
   * nodeid 0 (no lookup) for "." and "..", and for a name that vanished.
   * -ENFILE when the inode table is full.
   */
  private plusEntry(dir: u32, name: usize, nameLen: u32, out: usize): i32 {
    if (load<u8>(name) == DOT && (nameLen == 1 || (nameLen == 2 && load<u8>(name + 1) == DOT))) {
      return 0;
    }
    if (this.inodes.isFull) return -ENFILE;
    const node = fsLookup(this.share, dir, name, nameLen, this.statPtr);
    if (node < 0) return 0;
    const slot = this.addNode(<u32>node);
    if (slot < 0) return slot;
    this.entryOut(out, slot);
    return 0;
  }

  // --- xattrs ---

  private setxattr(): i32 {
    const request = this.request;
    if (request.argsLen < abi.SETXATTR_IN_SIZE) return -EINVAL;
    const node = this.nodeOf(request.nodeid);
    if (node < 0) return <i32>node;
    const size = request.u32At(0);
    const flags = request.u32At(4);
    const nameEnd = request.xattrName(abi.SETXATTR_IN_SIZE, false);
    if (nameEnd < 0) return nameEnd;
    if (size > abi.XATTR_SIZE_MAX || <u32>nameEnd + size != request.argsLen) return -EINVAL;
    // XATTR_CREATE (1) and XATTR_REPLACE (2) only.
    if (flags & ~3) return -EINVAL;
    if (!isUserXattr(request.str, request.strLen)) return -EPERM;
    const value = request.args + <usize>nameEnd;
    return fsSetxattr(this.share, <u32>node, request.str, request.strLen, value, size, flags);
  }

  private getxattr(chain: DescriptorChain): i32 {
    const request = this.request;
    if (request.argsLen < abi.GETXATTR_IN_SIZE) return -EINVAL;
    const node = this.nodeOf(request.nodeid);
    if (node < 0) return <i32>node;
    const size = request.u32At(0);
    const end = request.xattrName(abi.GETXATTR_IN_SIZE, true);
    if (end < 0) return end;
    if (!isUserXattr(request.str, request.strLen)) return -ENODATA;
    if (size == 0) {
      if (!replyFits(chain, abi.WORD_OUT_SIZE)) return -EINVAL;
      const length = fsGetxattr(this.share, <u32>node, request.str, request.strLen, 0, 0);
      return length < 0 ? length : this.sizeOut(chain, <u32>length);
    }
    const cap = min(size, DATA_BUFFER_SIZE);
    if (!replyFits(chain, cap)) return -EINVAL;
    const data = changetype<usize>(this.data);
    const n = fsGetxattr(this.share, <u32>node, request.str, request.strLen, data, cap);
    if (n < 0) return n;
    if (<u32>n > cap) return -EIO;
    return writePayload(chain, data, <u32>n);
  }

  /** The names of the "user." namespace only; the host's list is read whole and filtered here. */
  private listxattr(chain: DescriptorChain): i32 {
    const request = this.request;
    if (request.argsLen < abi.GETXATTR_IN_SIZE) return -EINVAL;
    const node = this.nodeOf(request.nodeid);
    if (node < 0) return <i32>node;
    const size = request.u32At(0);
    if (!replyFits(chain, size == 0 ? abi.WORD_OUT_SIZE : min(size, DATA_BUFFER_SIZE))) return -EINVAL;
    const data = changetype<usize>(this.data);
    const got = fsListxattr(this.share, <u32>node, data, DATA_BUFFER_SIZE);
    if (got < 0) return got;
    if (<u32>got > DATA_BUFFER_SIZE) return -EIO;
    // Compacts the kept names (each with its NUL) to the front of the buffer.
    let kept: u32 = 0;
    let at: u32 = 0;
    while (at < <u32>got) {
      let n: u32 = 0;
      while (at + n < <u32>got && load<u8>(data + <usize>(at + n)) != 0) n++;
      if (at + n == <u32>got) return -EIO; // unterminated
      if (isUserXattr(data + <usize>at, n)) {
        memory.copy(data + <usize>kept, data + <usize>at, n + 1);
        kept += n + 1;
      }
      at += n + 1;
    }
    if (size == 0) return this.sizeOut(chain, kept);
    if (kept > size) return -ERANGE;
    return writePayload(chain, data, kept);
  }

  private removexattr(): i32 {
    const request = this.request;
    const node = this.nodeOf(request.nodeid);
    if (node < 0) return <i32>node;
    const end = request.xattrName(0, true);
    if (end < 0) return end;
    if (!isUserXattr(request.str, request.strLen)) return -EPERM;
    return fsRemovexattr(this.share, <u32>node, request.str, request.strLen);
  }

  // --- helpers ---

  private get statPtr(): usize {
    return changetype<usize>(this.stat);
  }

  /** Host node of guest `nodeid`, or -ESTALE (forgotten, never given, or from before a restore). */
  private nodeOf(nodeid: u64): i64 {
    const slot = this.inodes.find(nodeid);
    return slot < 0 ? -ESTALE : <i64>this.inodes.node(slot);
  }

  /** Host file of guest `fh`, or -ESTALE (released, never given, or from before a restore). */
  private fileOf(fh: u64): i64 {
    const slot = this.files.find(fh);
    return slot < 0 ? -ESTALE : <i64>this.files.file(slot);
  }

  /** Ops that make an entry need room for its reply and a free inode slot. */
  private canAddEntry(chain: DescriptorChain): bool {
    return replyFits(chain, abi.ENTRY_OUT_SIZE) && !this.inodes.isFull;
  }

  private addEntryError(chain: DescriptorChain): i32 {
    return replyFits(chain, abi.ENTRY_OUT_SIZE) ? -ENFILE : -EINVAL;
  }

  /**
   * The slot for new host node `node`, whose stat record is in `stat`: the
   * known slot of that inode (the new handle is closed) or a new one; -ENFILE
   * (handle closed) when the table is full.
   */
  private addNode(node: u32): i32 {
    const stat = this.statPtr;
    const dev = load<u64>(stat + abi.STAT_DEV);
    const ino = load<u64>(stat + abi.STAT_INO);
    const inodes = this.inodes;
    let slot = inodes.findInode(dev, ino);
    if (slot >= 0) {
      // The root (slot 0) is never in the index, so `node` is never handle 0 here.
      if (node != inodes.node(slot)) fsForget(this.share, node);
      inodes.ref(slot);
      return slot;
    }
    slot = inodes.add(node, dev, ino);
    if (slot < 0) {
      fsForget(this.share, node);
      return -ENFILE;
    }
    return slot;
  }

  /** Replies fuse_entry_out for host result `node` (a new handle, stat in `stat`, or -errno); room was checked. */
  private entry(chain: DescriptorChain, node: i32): i32 {
    if (node < 0) return node;
    const slot = this.addNode(<u32>node);
    if (slot < 0) return slot;
    const out = this.reply.begin(abi.ENTRY_OUT_SIZE);
    this.entryOut(out, slot);
    return writePayload(chain, out, abi.ENTRY_OUT_SIZE);
  }

  private entryOut(out: usize, slot: i32): void {
    const timeout = this.timeout();
    store<u64>(out, <u64>slot + 1, 0); // nodeid
    store<u64>(out, 0, 8); // generation: nodeids are not reused while the guest knows them
    store<u64>(out, timeout, 16);
    store<u64>(out, timeout, 24);
    store<u64>(out, 0, 32); // both nsec fields
    memory.copy(out + 40, this.statPtr, abi.ATTR_SIZE);
  }

  /** Replies fuse_attr_out for host result `result` (stat in `stat`); room was checked. */
  private attrOut(chain: DescriptorChain, result: i32): i32 {
    if (result < 0) return result;
    const out = this.reply.begin(abi.ATTR_OUT_SIZE);
    store<u64>(out, this.timeout(), 0);
    memory.copy(out + 16, this.statPtr, abi.ATTR_SIZE);
    return writePayload(chain, out, abi.ATTR_OUT_SIZE);
  }

  /** Registers host `file` and fills fuse_open_out at `out` (the table has room). */
  private openOut(out: usize, file: u32, directory: bool): void {
    const fh = this.files.add(file);
    let flags: u32 = 0;
    if (this.cacheMode == CACHE_NONE && !directory) flags = abi.FOPEN_DIRECT_IO;
    // KEEP_CACHE on a directory keeps the cached listing across opens, which CACHE_DIR fills.
    if (this.cacheMode == CACHE_ALWAYS) {
      flags = directory ? abi.FOPEN_CACHE_DIR | abi.FOPEN_KEEP_CACHE : abi.FOPEN_KEEP_CACHE;
    }
    store<u64>(out, <u64>fh, 0);
    store<u32>(out, flags, 8);
  }

  /** fuse_getxattr_out {size} (room was checked). */
  private sizeOut(chain: DescriptorChain, size: u32): i32 {
    const out = this.reply.begin(abi.WORD_OUT_SIZE);
    store<u32>(out, size);
    return writePayload(chain, out, abi.WORD_OUT_SIZE);
  }

  /** Entry and attribute cache timeout in seconds. */
  private timeout(): u64 {
    if (this.cacheMode == CACHE_ALWAYS) return 86400;
    return this.cacheMode == CACHE_AUTO ? 1 : 0;
  }

  /** Writes the host I/O vector for `pieces` and returns its address. */
  private iovOf(pieces: IoVecList): usize {
    const iov = this.iov;
    for (let i = 0; i < pieces.count; i++) {
      unchecked((iov[2 * i] = pieces.addr(i)));
      unchecked((iov[2 * i + 1] = <u64>pieces.len(i)));
    }
    return changetype<usize>(iov);
  }
}

/** Requests that get no reply. */
function isOneWay(opcode: u32): bool {
  return opcode == abi.FUSE_FORGET || opcode == abi.FUSE_BATCH_FORGET || opcode == abi.FUSE_INTERRUPT;
}

/** Requests a read-only share refuses outright (OPEN is judged by its flags). */
function modifies(opcode: u32): bool {
  switch (opcode) {
    case abi.FUSE_SETATTR:
    case abi.FUSE_SYMLINK:
    case abi.FUSE_MKNOD:
    case abi.FUSE_MKDIR:
    case abi.FUSE_UNLINK:
    case abi.FUSE_RMDIR:
    case abi.FUSE_RENAME:
    case abi.FUSE_RENAME2:
    case abi.FUSE_LINK:
    case abi.FUSE_WRITE:
    case abi.FUSE_SETXATTR:
    case abi.FUSE_REMOVEXATTR:
    case abi.FUSE_CREATE:
    case abi.FUSE_FALLOCATE:
      return true;
  }
  return false;
}

/** Open flags that can change the file. */
function writes(flags: u32): bool {
  return (flags & abi.O_ACCMODE) != abi.O_RDONLY || (flags & abi.O_TRUNC) != 0;
}

function align8(n: u32): u32 {
  return (n + 7) & ~7;
}

/**
 * The host's `len` bytes of fuse_dirent records at `data` are whole records,
 * each with a name of 1 to NAME_MAX bytes and no '/' or NUL in it.
 */
function validEntries(data: usize, len: u32): bool {
  let at: u32 = 0;
  while (at < len) {
    if (len - at < abi.DIRENT_SIZE) return false;
    const entry = data + <usize>at;
    const nameLen = load<u32>(entry + abi.DIRENT_NAMELEN);
    if (nameLen == 0 || nameLen > abi.NAME_MAX || align8(abi.DIRENT_SIZE + nameLen) > len - at) return false;
    const name = entry + abi.DIRENT_SIZE;
    for (let i: u32 = 0; i < nameLen; i++) {
      const c = load<u8>(name + <usize>i);
      if (c == 0 || c == 0x2f) return false;
    }
    at += align8(abi.DIRENT_SIZE + nameLen);
  }
  return true;
}

/** The name starts with "user." (and has more after it). */
function isUserXattr(name: usize, len: u32): bool {
  // "user." as bytes.
  return (
    len > 5 &&
    load<u8>(name) == 0x75 &&
    load<u8>(name + 1) == 0x73 &&
    load<u8>(name + 2) == 0x65 &&
    load<u8>(name + 3) == 0x72 &&
    load<u8>(name + 4) == 0x2e
  );
}
