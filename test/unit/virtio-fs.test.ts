// virtio-fs on the real device module, with an in-memory fake of the host
// backend behind the fs imports: the INIT handshake, every served opcode
// round trip, read-only shares, nlookup and FORGET, snapshot, and hostile
// requests (unit cases and a property test). The fake checks every call the
// module makes: handles it gave out, pointers inside guest RAM or the
// module's heap, names that are single path components.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../../host/native.js';
import { FsShares } from '../../host/virtiofs/backend.js';
import { loadDevices, type Devices, type FsCallbacks } from '../../host/wasm/devices.js';
import {
  addChain, kick, mem, offeredFeatures, queueLayout, readUsed, REG, setupDevice, STATUS, VIRTIO_BASE, VIRTIO_GSI,
  type DeviceHost, type Queue, type Segment, type VirtioTestDevice,
} from './virtio-rings.js';

const RAM = 16 << 20;
const HEAP = 0xc000_0000;
const QUEUE_SIZE = 256;
const RINGS = [0x1_0000, 0x2_0000];
const REQUEST_AT = 0x10_0000;
const REPLY_AT = 0x40_0000;
const SHARE = 7;
const TAG = 'hako-shared';

const OP = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, SYMLINK: 6, MKNOD: 8, MKDIR: 9, UNLINK: 10, RMDIR: 11,
  RENAME: 12, LINK: 13, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17, RELEASE: 18, FSYNC: 20, SETXATTR: 21, GETXATTR: 22,
  LISTXATTR: 23, REMOVEXATTR: 24, FLUSH: 25, INIT: 26, OPENDIR: 27, READDIR: 28, RELEASEDIR: 29, FSYNCDIR: 30,
  GETLK: 31, ACCESS: 34, CREATE: 35, INTERRUPT: 36, DESTROY: 38, BATCH_FORGET: 42, FALLOCATE: 43, READDIRPLUS: 44,
  RENAME2: 45, LSEEK: 46,
} as const;
const E = {
  PERM: 1, NOENT: 2, IO: 5, BADF: 9, EXIST: 17, NOTDIR: 20, ISDIR: 21, INVAL: 22, NFILE: 23, ROFS: 30, RANGE: 34,
  NAMETOOLONG: 36, NOSYS: 38, NOTEMPTY: 39, NODATA: 61, PROTO: 71, STALE: 116,
} as const;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const O_RDWR = 2;
const O_TRUNC = 0o1000;
const O_EXCL = 0o200;
/** assembly/virtio/fs/abi.ts OPEN_FLAGS_PASSED: what the host may see of open flags. */
const OPEN_FLAGS_PASSED = 3 | 0o2000 | 0o1000 | 0o4000 | 0o4010000 | 0o10000 | 0o200000 | 0o1000000;
/** assembly/virtio/fs/device.ts FS_ERROR_NO_REPLY_ROOM. */
const NO_REPLY_ROOM_FAILURE = 0x110;
const MAX_WRITE = 1 << 20;

// --- the fake backend ---

interface FakeNode {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  data: Uint8Array;
  target: string;
  children: Map<string, FakeNode>;
  xattrs: Map<string, Uint8Array>;
  nlink: number;
}

interface FakeHost extends DeviceHost {
  root: FakeNode;
  /** Host node handles the module holds (0 = root). */
  nodes: Map<number, FakeNode>;
  files: Map<number, FakeNode>;
  /** Calls the module should never have made. */
  violations: string[];
  calls: string[];
  readOnly: boolean;
  /** readdir puts a '/' into the last name it returns (a host bug the module must catch). */
  corruptReaddir: boolean;
}

let nextIno = 1;

function newNode(mode: number, uid = 0, gid = 0): FakeNode {
  return {
    ino: nextIno++, mode, uid, gid, data: new Uint8Array(0), target: '', children: new Map(), xattrs: new Map(),
    nlink: 1,
  };
}

const isDir = (n: FakeNode) => (n.mode & 0o170000) === S_IFDIR;

async function fakeHost(options: { readOnly?: boolean; cache?: 'none' | 'auto' | 'always' } = {}): Promise<FakeHost> {
  const h = {
    root: newNode(S_IFDIR | 0o755), nodes: new Map(), files: new Map(), violations: [], calls: [],
    readOnly: options.readOnly ?? false, corruptReaddir: false,
  } as unknown as FakeHost;
  h.nodes.set(0, h.root);
  let nextHandle = 1;
  const bytes = () => new Uint8Array(h.devices.memory.buffer);
  const view = () => new DataView(h.devices.memory.buffer);
  /** A pointer range the module may hand over: guest RAM or its heap. */
  const range = (what: string, at: number, len: number): boolean => {
    const size = h.devices.memory.buffer.byteLength;
    const ok = at + len <= size && (at >= HEAP || at + len <= RAM);
    if (!ok) h.violations.push(`${what} ${at}+${len}`);
    return ok;
  };
  const node = (what: string, handle: number): FakeNode | undefined => {
    const n = h.nodes.get(handle);
    if (!n) h.violations.push(`${what}: unknown node ${handle}`);
    return n;
  };
  const file = (what: string, handle: number): FakeNode | undefined => {
    const n = h.files.get(handle);
    if (!n) h.violations.push(`${what}: unknown file ${handle}`);
    return n;
  };
  const text = (at: number, len: number) => Buffer.from(bytes().subarray(at, at + len)).toString('latin1');
  const component = (what: string, at: number, len: number): string | undefined => {
    if (!range(what, at, len)) return undefined;
    const name = text(at, len);
    if (len === 0 || len > 255 || name === '.' || name === '..' || /[/\0]/.test(name)) {
      h.violations.push(`${what}: bad name ${JSON.stringify(name)}`);
      return undefined;
    }
    return name;
  };
  const writeStat = (at: number, n: FakeNode) => {
    if (!range('stat', at, 96)) return;
    const m = view();
    new Uint8Array(h.devices.memory.buffer, at, 96).fill(0);
    m.setBigUint64(at, BigInt(n.ino), true);
    m.setBigUint64(at + 8, BigInt(isDir(n) ? 4096 : n.data.length + n.target.length), true);
    m.setUint32(at + 60, n.mode, true);
    m.setUint32(at + 64, n.nlink, true);
    m.setUint32(at + 68, n.uid, true);
    m.setUint32(at + 72, n.gid, true);
    m.setUint32(at + 80, 4096, true);
    m.setBigUint64(at + 88, 1n, true);
  };
  /** A new handle for `n`, as native opens a new O_PATH fd per lookup. */
  const handle = (n: FakeNode, stat: number) => {
    const id = nextHandle++;
    h.nodes.set(id, n);
    writeStat(stat, n);
    return id;
  };
  const iovs = (iov: number, count: number): [number, number][] | undefined => {
    if (count > 1024 || !range('iov', iov, 16 * count)) return undefined;
    const m = view();
    const out: [number, number][] = [];
    for (let i = 0; i < count; i++) {
      const addr = Number(m.getBigUint64(iov + 16 * i, true));
      const len = Number(m.getBigUint64(iov + 16 * i + 8, true));
      if (!range('iov piece', addr, len)) return undefined;
      out.push([addr, len]);
    }
    return out;
  };
  const modifying = (what: string) => {
    if (h.readOnly) h.violations.push(`${what} on a read-only share`);
    return h.readOnly;
  };
  const make = (what: string, parent: number, name: number, nameLen: number, mode: number, uid: number, gid: number,
    stat: number, fill: (n: FakeNode) => void = () => {}): number => {
    if (modifying(what)) return -E.ROFS;
    const p = node(what, parent);
    const key = component(what, name, nameLen);
    if (!p || key === undefined) return -E.INVAL;
    if (!isDir(p)) return -E.NOTDIR;
    if (p.children.has(key)) return -E.EXIST;
    const n = newNode(mode, uid, gid);
    fill(n);
    p.children.set(key, n);
    return handle(n, stat);
  };
  const userXattr = (what: string, at: number, len: number): string | undefined => {
    if (!range(what, at, len)) return undefined;
    const name = text(at, len);
    if (!name.startsWith('user.') || name.includes('\0')) h.violations.push(`${what}: xattr ${JSON.stringify(name)}`);
    return name;
  };
  const callbacks: FsCallbacks = {
    lookup(_share, parent, name, nameLen, stat) {
      h.calls.push('lookup');
      const p = node('lookup', parent);
      const key = component('lookup', name, nameLen);
      if (!p || key === undefined) return -E.INVAL;
      const n = p.children.get(key);
      return n ? handle(n, stat) : -E.NOENT;
    },
    forget(_share, n) {
      h.calls.push('forget');
      if (n === 0 || !h.nodes.has(n)) h.violations.push(`forget ${n}`);
      h.nodes.delete(n);
    },
    getattr(_share, n, stat) {
      const f = node('getattr', n);
      if (!f) return -E.BADF;
      writeStat(stat, f);
      return 0;
    },
    setattr(_share, n, fileHandle, attr, stat) {
      if (modifying('setattr')) return -E.ROFS;
      const f = node('setattr', n);
      if (!f || !range('attr', attr, 48)) return -E.BADF;
      if (fileHandle !== -1) file('setattr', fileHandle);
      const m = view();
      const valid = m.getUint32(attr, true);
      if (valid & ~(1 | 2 | 4 | 8 | 16 | 32 | 128 | 256)) h.violations.push(`setattr valid ${valid}`);
      if (valid & 1) f.mode = (f.mode & 0o170000) | m.getUint32(attr + 4, true);
      if (valid & 2) f.uid = m.getUint32(attr + 8, true);
      if (valid & 4) f.gid = m.getUint32(attr + 12, true);
      if (valid & 8) {
        const size = Number(m.getBigUint64(attr + 16, true));
        const data = new Uint8Array(size);
        data.set(f.data.subarray(0, size));
        f.data = data;
      }
      writeStat(stat, f);
      return 0;
    },
    readlink(_share, n, buf, cap) {
      const f = node('readlink', n);
      if (!f || !range('readlink', buf, cap)) return -E.BADF;
      if ((f.mode & 0o170000) !== S_IFLNK) return -E.INVAL;
      const t = Buffer.from(f.target, 'latin1').subarray(0, cap);
      bytes().set(t, buf);
      return t.length;
    },
    open(_share, n, flags) {
      const f = node('open', n);
      if (!f) return -E.BADF;
      if (flags & ~OPEN_FLAGS_PASSED) h.violations.push(`open flags 0o${flags.toString(8)}`);
      if (((flags & 3) !== 0 || flags & O_TRUNC) && modifying('open for writing')) return -E.ROFS;
      if (flags & O_TRUNC) f.data = new Uint8Array(0);
      const id = nextHandle++;
      h.files.set(id, f);
      return id;
    },
    release(_share, f) {
      if (!h.files.delete(f)) h.violations.push(`release ${f}`);
    },
    create(_share, parent, name, nameLen, mode, exclusive, uid, gid, stat) {
      const p = h.nodes.get(parent);
      const key = text(name, nameLen);
      const existing = p?.children.get(key);
      if (existing && !exclusive && !h.readOnly) {
        component('create', name, nameLen);
        return handle(existing, stat);
      }
      return make('create', parent, name, nameLen, S_IFREG | mode, uid, gid, stat);
    },
    mknod(_share, parent, name, nameLen, mode, _rdev, uid, gid, stat) {
      return make('mknod', parent, name, nameLen, mode, uid, gid, stat);
    },
    mkdir(_share, parent, name, nameLen, mode, uid, gid, stat) {
      return make('mkdir', parent, name, nameLen, S_IFDIR | mode, uid, gid, stat);
    },
    symlink(_share, parent, name, nameLen, target, targetLen, uid, gid, stat) {
      if (!range('symlink target', target, targetLen) || targetLen === 0 || targetLen > 4095) return -E.INVAL;
      const t = text(target, targetLen);
      return make('symlink', parent, name, nameLen, S_IFLNK | 0o777, uid, gid, stat, (n) => (n.target = t));
    },
    link(_share, n, newParent, name, nameLen, stat) {
      if (modifying('link')) return -E.ROFS;
      const f = node('link', n);
      const p = node('link', newParent);
      const key = component('link', name, nameLen);
      if (!f || !p || key === undefined) return -E.BADF;
      if (p.children.has(key)) return -E.EXIST;
      p.children.set(key, f);
      f.nlink++;
      return handle(f, stat);
    },
    unlink(_share, parent, name, nameLen, directory) {
      if (modifying('unlink')) return -E.ROFS;
      const p = node('unlink', parent);
      const key = component('unlink', name, nameLen);
      if (!p || key === undefined) return -E.BADF;
      const n = p.children.get(key);
      if (!n) return -E.NOENT;
      if (directory !== isDir(n)) return directory ? -E.NOTDIR : -E.ISDIR;
      if (directory && n.children.size > 0) return -E.NOTEMPTY;
      p.children.delete(key);
      n.nlink--;
      return 0;
    },
    rename(_share, oldParent, oldName, oldLen, newParent, newName, newLen, flags) {
      if (modifying('rename')) return -E.ROFS;
      const from = node('rename', oldParent);
      const to = node('rename', newParent);
      const a = component('rename', oldName, oldLen);
      const b = component('rename', newName, newLen);
      if (flags & ~3) h.violations.push(`rename flags ${flags}`);
      if (!from || !to || a === undefined || b === undefined) return -E.BADF;
      const n = from.children.get(a);
      if (!n) return -E.NOENT;
      if (flags & 1 && to.children.has(b)) return -E.EXIST;
      from.children.delete(a);
      to.children.set(b, n);
      return 0;
    },
    read(_share, f, offset, iov, count) {
      const n = file('read', f);
      const pieces = iovs(iov, count);
      if (!n || !pieces) return -E.BADF;
      let at = Number(offset);
      let done = 0;
      for (const [addr, len] of pieces) {
        const chunk = n.data.subarray(at, at + len);
        bytes().set(chunk, addr);
        at += chunk.length;
        done += chunk.length;
        if (chunk.length < len) break;
      }
      return done;
    },
    write(_share, f, offset, iov, count) {
      if (modifying('write')) return -E.ROFS;
      const n = file('write', f);
      const pieces = iovs(iov, count);
      if (!n || !pieces) return -E.BADF;
      let at = Number(offset);
      for (const [addr, len] of pieces) {
        if (at + len > n.data.length) {
          const grown = new Uint8Array(at + len);
          grown.set(n.data);
          n.data = grown;
        }
        n.data.set(bytes().subarray(addr, addr + len), at);
        at += len;
      }
      return at - Number(offset);
    },
    fsync(_share, f) {
      return file('fsync', f) ? 0 : -E.BADF;
    },
    fallocate(_share, f) {
      if (modifying('fallocate')) return -E.ROFS;
      return file('fallocate', f) ? 0 : -E.BADF;
    },
    lseek(_share, f, offset) {
      return file('lseek', f) ? offset : BigInt(-E.BADF);
    },
    statfs(_share, n, out) {
      if (!node('statfs', n) || !range('statfs', out, 80)) return -E.BADF;
      const m = view();
      m.setBigUint64(out, 1000n, true);
      m.setUint32(out + 40, 4096, true);
      m.setUint32(out + 44, 255, true);
      return 0;
    },
    readdir(_share, f, offset, buf, cap) {
      const dir = file('readdir', f);
      if (!dir || !range('readdir', buf, cap)) return -E.BADF;
      const names = ['.', '..', ...dir.children.keys()];
      const m = view();
      let written = 0;
      for (let i = Number(offset); i < names.length; i++) {
        const name = Buffer.from(names[i]!, 'latin1');
        const size = (24 + name.length + 7) & ~7;
        if (written + size > cap) break;
        const child = i < 2 ? dir : dir.children.get(names[i]!)!;
        m.setBigUint64(buf + written, BigInt(child.ino), true);
        m.setBigUint64(buf + written + 8, BigInt(i + 1), true);
        m.setUint32(buf + written + 16, name.length, true);
        m.setUint32(buf + written + 20, isDir(child) ? 4 : 8, true);
        bytes().set(name, buf + written + 24);
        written += size;
        if (h.corruptReaddir) bytes()[buf + written - size + 24] = 0x2f;
      }
      return written;
    },
    getxattr(_share, n, name, nameLen, buf, cap) {
      const f = node('getxattr', n);
      const key = userXattr('getxattr', name, nameLen);
      if (!f || key === undefined || !range('getxattr buf', buf, cap)) return -E.BADF;
      const value = f.xattrs.get(key);
      if (!value) return -E.NODATA;
      if (cap === 0) return value.length;
      if (value.length > cap) return -E.RANGE;
      bytes().set(value, buf);
      return value.length;
    },
    listxattr(_share, n, buf, cap) {
      const f = node('listxattr', n);
      if (!f || !range('listxattr', buf, cap)) return -E.BADF;
      // The host also has a trusted.* attribute the module must filter out.
      const list = Buffer.from([...f.xattrs.keys(), 'trusted.secret'].map((k) => `${k}\0`).join(''), 'latin1');
      if (cap === 0) return list.length;
      if (list.length > cap) return -E.RANGE;
      bytes().set(list, buf);
      return list.length;
    },
    setxattr(_share, n, name, nameLen, value, valueLen) {
      if (modifying('setxattr')) return -E.ROFS;
      const f = node('setxattr', n);
      const key = userXattr('setxattr', name, nameLen);
      if (!f || key === undefined || !range('setxattr value', value, valueLen)) return -E.BADF;
      f.xattrs.set(key, bytes().slice(value, value + valueLen));
      return 0;
    },
    removexattr(_share, n, name, nameLen) {
      if (modifying('removexattr')) return -E.ROFS;
      const f = node('removexattr', n);
      const key = userXattr('removexattr', name, nameLen);
      if (!f || key === undefined) return -E.BADF;
      return f.xattrs.delete(key) ? 0 : -E.NODATA;
    },
  };
  // Every share id the module passes must be ours.
  const checked = Object.fromEntries(Object.entries(callbacks).map(([k, f]) => [k, (share: number, ...args: unknown[]) => {
    if (share !== SHARE) h.violations.push(`${k}: share ${share}`);
    return (f as (...a: unknown[]) => unknown)(share, ...args);
  }])) as unknown as FsCallbacks;
  const noop = () => {};
  h.devices = await loadDevices({
    irqLine: noop, consoleWrite: noop, resetRequest: noop, guestExit: noop, wallClockSeconds: () => 0,
    fillRandom: noop, ioSubmit: noop, irqPulse: noop, fs: checked,
  });
  h.devices.setGuestRamBytes(RAM);
  const index = h.devices.addVirtioFs(VIRTIO_BASE, VIRTIO_GSI, TAG, SHARE, h.readOnly, options.cache ?? 'auto');
  assert.is(index, 0);
  return h;
}

// --- the guest driver ---

interface Reply {
  /** Bytes the device reported used; -1 when it put no used entry (it failed). */
  used: number;
  len: number;
  error: number;
  unique: bigint;
  payload: Uint8Array;
  view: DataView;
}

interface Request {
  nodeid?: bigint;
  args?: Uint8Array;
  /** Bytes after the args (WRITE data). */
  data?: Uint8Array;
  /** Writable bytes (default 8 KiB + the data the op may return). */
  replySize?: number;
  /** fuse_in_header.len override. */
  len?: number;
  /** Split the readable part at these offsets and the writable part at these. */
  splits?: number[];
  replySplits?: number[];
  queue?: 0 | 1;
  uid?: number;
}

class Guest<H extends DeviceHost = FakeHost> {
  dev: VirtioTestDevice<H>;
  queues: Queue<H>[];
  private unique = 1n;

  constructor(readonly h: H) {
    this.dev = setupDevice(h, VIRTIO_BASE, RINGS.map((at) => queueLayout(at, QUEUE_SIZE)));
    this.queues = this.dev.queues;
  }

  /** Sends one raw request (header + args already laid out) and returns the used entry and reply. */
  raw(readable: Uint8Array, replySize: number, splits: number[] = [], replySplits: number[] = [], queue = 1): Reply {
    const b = new Uint8Array(this.h.devices.memory.buffer);
    b.set(readable, REQUEST_AT);
    b.fill(0xee, REPLY_AT, REPLY_AT + replySize);
    const segments: Segment[] = [
      ...cut(REQUEST_AT, readable.length, splits, false),
      ...cut(REPLY_AT, replySize, replySplits, true),
    ];
    const q = this.queues[queue]!;
    addChain(q, segments);
    kick(q);
    const used = readUsed(q);
    assert.ok(used.length <= 1, 'at most one used entry per request');
    // None: the device failed.
    if (used.length === 0) return { used: -1, len: 0, error: NaN, unique: 0n, payload: new Uint8Array(0), view: new DataView(new ArrayBuffer(0)) };
    // The module's heap may have grown the memory: a fresh view.
    const m = mem(this.h);
    const n = used[0]!.len;
    const payload = new Uint8Array(this.h.devices.memory.buffer).slice(REPLY_AT + 16, REPLY_AT + Math.max(16, n));
    return {
      used: n, len: n >= 16 ? m.getUint32(REPLY_AT, true) : 0, error: n >= 16 ? m.getInt32(REPLY_AT + 4, true) : 0,
      unique: n >= 16 ? m.getBigUint64(REPLY_AT + 8, true) : 0n, payload, view: new DataView(payload.buffer),
    };
  }

  call(opcode: number, r: Request = {}): Reply {
    const args = r.args ?? new Uint8Array(0);
    const data = r.data ?? new Uint8Array(0);
    const total = 40 + args.length + data.length;
    const readable = new Uint8Array(total);
    const m = new DataView(readable.buffer);
    const unique = this.unique++;
    m.setUint32(0, r.len ?? total, true);
    m.setUint32(4, opcode, true);
    m.setBigUint64(8, unique, true);
    m.setBigUint64(16, r.nodeid ?? 1n, true);
    m.setUint32(24, r.uid ?? 1000, true);
    m.setUint32(28, 1000, true);
    readable.set(args, 40);
    readable.set(data, 40 + args.length);
    const reply = this.raw(readable, r.replySize ?? 8192 + 256, r.splits, r.replySplits, r.queue ?? 1);
    if (reply.used >= 16) {
      assert.is(reply.unique, unique, 'the reply names the request');
      assert.is(reply.len, reply.used, 'out header len == used');
    }
    return reply;
  }

  /** call(), expecting success. */
  ok(opcode: number, r: Request = {}): Reply {
    const reply = this.call(opcode, r);
    assert.is(reply.error, 0, `opcode ${opcode} failed with ${reply.error}`);
    return reply;
  }

  init(minor = 36, flags = 0xffff_ffff): Reply {
    return this.call(OP.INIT, { args: u32s(7, minor, 128 * 1024, flags, 0, ...new Array(11).fill(0)) });
  }

  lookup(name: string, parent = 1n): Reply {
    return this.call(OP.LOOKUP, { nodeid: parent, args: cstr(name) });
  }

  /** The nodeid of an entry_out reply. */
  static nodeid(reply: Reply): bigint {
    return reply.view.getBigUint64(0, true);
  }

  static fh(reply: Reply, at = 0): bigint {
    return reply.view.getBigUint64(at, true);
  }
}

/** Segments for [addr, addr + len) cut at `splits` (out-of-range cuts ignored); none for len 0. */
function cut(addr: number, len: number, splits: number[], write: boolean): Segment[] {
  if (len === 0) return [];
  const points = [...new Set(splits.filter((s) => s > 0 && s < len))].sort((a, b) => a - b);
  const segments: Segment[] = [];
  let at = 0;
  for (const p of [...points, len]) {
    segments.push({ addr: addr + at, len: p - at, write });
    at = p;
  }
  return segments;
}

function u32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const m = new DataView(out.buffer);
  values.forEach((v, i) => m.setUint32(4 * i, v >>> 0, true));
  return out;
}

function u64s(...values: bigint[]): Uint8Array {
  const out = new Uint8Array(8 * values.length);
  const m = new DataView(out.buffer);
  values.forEach((v, i) => m.setBigUint64(8 * i, v, true));
  return out;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function cstr(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(`${s}\0`, 'latin1'));
}

/** read_in / write_in: fh, offset, size, flags, lock_owner, flags, padding. */
function ioArgs(fh: bigint, offset: bigint, size: number): Uint8Array {
  return cat(u64s(fh, offset), u32s(size, 0), u64s(0n), u32s(0, 0));
}

/** A device with an initialized session. */
async function mounted(options: { readOnly?: boolean; cache?: 'none' | 'auto' | 'always' } = {}): Promise<Guest> {
  const g = new Guest(await fakeHost(options));
  assert.is(g.init().error, 0);
  return g;
}

function create(g: Guest<DeviceHost>, name: string, parent = 1n, flags = O_RDWR): { nodeid: bigint; fh: bigint; reply: Reply } {
  const reply = g.ok(OP.CREATE, { nodeid: parent, args: cat(u32s(flags, 0o644, 0o022, 0), cstr(name)) });
  return { nodeid: Guest.nodeid(reply), fh: Guest.fh(reply, 128), reply };
}

function mkdir(g: Guest<DeviceHost>, name: string, parent = 1n): bigint {
  return Guest.nodeid(g.ok(OP.MKDIR, { nodeid: parent, args: cat(u32s(0o755, 0o022), cstr(name)) }));
}

function open(g: Guest<DeviceHost>, nodeid: bigint, flags = O_RDWR, op: number = OP.OPEN): bigint {
  return Guest.fh(g.ok(op, { nodeid, args: u32s(flags, 0) }));
}

/** The (name, nodeid, off) entries of a READDIR(PLUS) payload. */
function dirents(reply: Reply, plus: boolean): { name: string; nodeid: bigint; off: bigint }[] {
  const out: { name: string; nodeid: bigint; off: bigint }[] = [];
  const m = reply.view;
  let at = 0;
  while (at < reply.payload.length) {
    const nodeid = plus ? m.getBigUint64(at, true) : 0n;
    const d = at + (plus ? 128 : 0);
    const nameLen = m.getUint32(d + 16, true);
    out.push({ name: Buffer.from(reply.payload.subarray(d + 24, d + 24 + nameLen)).toString('latin1'), nodeid, off: m.getBigUint64(d + 8, true) });
    at = (d + 24 + nameLen + 7) & ~7;
  }
  return out;
}

// --- tests ---

test('fs: device id 26, two queues, no feature bits of its own, tag and num_request_queues in config space', async () => {
  const h = await fakeHost();
  const dev = setupDevice(h, VIRTIO_BASE, RINGS.map((at) => queueLayout(at, QUEUE_SIZE)));
  assert.is(dev.read(REG.DEVICE_ID), 26);
  assert.is(offeredFeatures(dev) & 0xffff_ffffn & ~((1n << 28n) | (1n << 29n)), 0n);
  const tag = Buffer.alloc(36);
  for (let i = 0; i < 36; i++) tag[i] = Number(h.devices.mmioRead(VIRTIO_BASE + 0x100n + BigInt(i), 1));
  assert.is(tag.toString('latin1').replace(/\0+$/, ''), TAG);
  assert.is(Number(h.devices.mmioRead(VIRTIO_BASE + 0x100n + 36n, 4)), 1);
  assert.is(h.devices.mmioRead(VIRTIO_BASE + 0x100n + 38n, 4), 0n, 'reads past the config space are 0');
  // The tag buffer was zeroed: a second device with a shorter tag is not padded with the first one's bytes.
  h.devices.addVirtioFs(VIRTIO_BASE + 0x1000n, VIRTIO_GSI + 1, 'b', SHARE, false, 'none');
  assert.is(Number(h.devices.mmioRead(VIRTIO_BASE + 0x1100n, 8)), 0x62);
});

test('fs: INIT first (else -EIO), answers 7.min(36, guest), 1 MiB max_write, offered flags only; one INIT per session', async () => {
  const g = new Guest(await fakeHost());
  assert.is(g.call(OP.GETATTR, { args: new Uint8Array(16) }).error, -E.IO);
  assert.is(g.init(22).error, -E.PROTO, 'too old a minor');
  const reply = g.init(38, 0xffff_ffff);
  assert.is(reply.error, 0);
  assert.is(reply.payload.length, 64);
  const m = reply.view;
  assert.equal([m.getUint32(0, true), m.getUint32(4, true)], [7, 36]);
  assert.is(m.getUint32(8, true), 128 * 1024, 'max_readahead: the guest\'s');
  const flags = m.getUint32(12, true);
  assert.ok(flags & (1 << 13), 'READDIRPLUS');
  assert.ok(flags & (1 << 22), 'MAX_PAGES');
  assert.not.ok(flags & (1 << 16), 'no writeback cache');
  assert.not.ok(flags & (1 << 29), 'no SETXATTR_EXT: the compat setxattr_in is parsed');
  assert.is(m.getUint32(20, true), MAX_WRITE);
  assert.is(m.getUint16(28, true), 256);
  assert.is(g.init().error, -E.IO, 'a second INIT');
  assert.is(g.ok(OP.GETATTR, { args: new Uint8Array(16) }).view.getUint32(16 + 60, true) & 0o170000, S_IFDIR);
  // Flags the guest did not offer are not answered.
  const g2 = new Guest(await fakeHost());
  assert.is(g2.init(31, 1 << 13).view.getUint32(12, true), 1 << 13);
  assert.is(g2.init().error, -E.IO);
  assert.equal(g.h.violations, []);
});

test('fs: lookup, getattr, create/write/read, setattr, dedupe of one inode to one nodeid', async () => {
  const g = await mounted();
  assert.is(g.lookup('missing').error, -E.NOENT);
  const { nodeid, fh, reply } = create(g, 'a.txt');
  assert.is(reply.payload.length, 144);
  assert.ok(nodeid > 1n);
  assert.is(reply.view.getBigUint64(16, true), 1n, 'entry_valid: 1 s (cache auto)');
  assert.is(reply.view.getUint32(136, true), 0, 'no open flags in cache auto');
  const data = Uint8Array.from({ length: 10000 }, (_, i) => i & 0xff);
  const w = g.ok(OP.WRITE, { nodeid, args: ioArgs(fh, 0n, data.length), data, splits: [60, 100, 5000] });
  assert.is(w.view.getUint32(0, true), data.length);
  const r = g.ok(OP.READ, { nodeid, args: ioArgs(fh, 100n, 9000), replySize: 16 + 9000, replySplits: [16, 4000] });
  assert.equal([...r.payload], [...data.subarray(100, 9100)]);
  // A short read at the end of the file.
  assert.is(g.ok(OP.READ, { nodeid, args: ioArgs(fh, 9990n, 100), replySize: 116 }).payload.length, 10);
  // Another lookup of the same inode: the same nodeid, the new host handle closed.
  const handles = g.h.nodes.size;
  const again = g.lookup('a.txt');
  assert.is(Guest.nodeid(again), nodeid);
  assert.is(g.h.nodes.size, handles);
  const attr = g.ok(OP.GETATTR, { nodeid, args: new Uint8Array(16) });
  assert.is(attr.view.getBigUint64(16 + 8, true), 10000n);
  // SETATTR size through the fh, and mode.
  const setattr = new Uint8Array(88);
  const sm = new DataView(setattr.buffer);
  sm.setUint32(0, 8 | 64 | 1 | 2048, true);
  sm.setBigUint64(8, fh, true);
  sm.setBigUint64(16, 5n, true);
  sm.setUint32(68, S_IFDIR | 0o600, true);
  const set = g.ok(OP.SETATTR, { nodeid, args: setattr });
  assert.is(set.view.getBigUint64(16 + 8, true), 5n);
  assert.is(set.view.getUint32(16 + 60, true), S_IFREG | 0o600, 'mode bits only: the type stays');
  g.ok(OP.FLUSH, { nodeid, args: u64s(fh, 0n, 0n) });
  g.ok(OP.FSYNC, { nodeid, args: u64s(fh, 1n) });
  g.ok(OP.FALLOCATE, { nodeid, args: cat(u64s(fh, 0n, 4096n), u32s(1, 0)) });
  assert.is(g.call(OP.FALLOCATE, { nodeid, args: cat(u64s(fh, 0n, 4096n), u32s(8, 0)) }).error, -95);
  assert.is(g.ok(OP.LSEEK, { nodeid, args: cat(u64s(fh, 3n), u32s(3, 0)) }).view.getBigUint64(0, true), 3n);
  assert.is(g.call(OP.LSEEK, { nodeid, args: cat(u64s(fh, 3n), u32s(0, 0)) }).error, -E.INVAL, 'SEEK_SET is the kernel\'s');
  g.ok(OP.RELEASE, { nodeid, args: cat(u64s(fh), u32s(0, 0), u64s(0n)) });
  assert.is(g.h.files.size, 0);
  assert.is(g.call(OP.READ, { nodeid, args: ioArgs(fh, 0n, 10) }).error, -E.STALE, 'a released fh');
  // O_EXCL create of an existing name.
  assert.is(g.call(OP.CREATE, { args: cat(u32s(O_RDWR | O_EXCL, 0o644, 0, 0), cstr('a.txt')) }).error, -E.EXIST);
  assert.equal(g.h.violations, []);
});

test('fs: mkdir, readdir and readdirplus (resumed at the cookie), unlink, rmdir, rename, rename2', async () => {
  const g = await mounted();
  const dir = mkdir(g, 'd');
  const names = Array.from({ length: 40 }, (_, i) => `file-${i}-${'x'.repeat(i)}`);
  for (const name of names) g.ok(OP.RELEASE, { args: cat(u64s(create(g, name, dir).fh), u32s(0, 0), u64s(0n)) });
  const fh = open(g, dir, 0, OP.OPENDIR);
  for (const plus of [false, true]) {
    const seen: { name: string; nodeid: bigint; off: bigint }[] = [];
    let offset = 0n;
    for (;;) {
      const r = g.ok(plus ? OP.READDIRPLUS : OP.READDIR, { nodeid: dir, args: ioArgs(fh, offset, 1024), replySize: 16 + 1024 });
      assert.ok(r.payload.length <= 1024);
      const entries = dirents(r, plus);
      if (entries.length === 0) break;
      seen.push(...entries);
      offset = entries.at(-1)!.off;
    }
    assert.equal(seen.map((e) => e.name), ['.', '..', ...names]);
    if (plus) {
      assert.is(seen[0]!.nodeid, 0n, '"." is not looked up');
      const looked = g.lookup(names[3]!, dir);
      assert.is(seen[5]!.nodeid, Guest.nodeid(looked));
    }
  }
  g.ok(OP.RELEASEDIR, { nodeid: dir, args: cat(u64s(fh), u32s(0, 0), u64s(0n)) });
  // A buffer too small for even one entry.
  const fh2 = open(g, dir, 0, OP.OPENDIR);
  assert.is(g.call(OP.READDIRPLUS, { nodeid: dir, args: ioArgs(fh2, 0n, 100), replySize: 116 }).error, -E.INVAL);
  // Host entries are checked before any is looked up or copied.
  g.h.corruptReaddir = true;
  const lookups = g.h.calls.filter((c) => c === 'lookup').length;
  assert.is(g.call(OP.READDIRPLUS, { nodeid: dir, args: ioArgs(fh2, 0n, 4096), replySize: 16 + 4096 }).error, -E.IO);
  assert.is(g.h.calls.filter((c) => c === 'lookup').length, lookups);
  g.h.corruptReaddir = false;
  g.ok(OP.RENAME, { nodeid: dir, args: cat(u64s(1n), cstr(names[0]!), cstr('moved')) });
  assert.is(g.lookup(names[0]!, dir).error, -E.NOENT);
  g.ok(OP.LOOKUP, { args: cstr('moved') });
  assert.is(g.call(OP.RENAME2, { nodeid: dir, args: cat(u64s(1n), u32s(1, 0), cstr(names[1]!), cstr('moved')) }).error, -E.EXIST);
  assert.is(g.call(OP.RENAME2, { nodeid: dir, args: cat(u64s(1n), u32s(4, 0), cstr(names[1]!), cstr('w')) }).error, -E.INVAL, 'RENAME_WHITEOUT');
  assert.is(g.call(OP.RMDIR, { args: cstr('d') }).error, -39);
  for (const name of names.slice(1)) g.ok(OP.UNLINK, { nodeid: dir, args: cstr(name) });
  g.ok(OP.RMDIR, { args: cstr('d') });
  assert.equal(g.h.violations, []);
});

test('fs: symlink/readlink, link (one nodeid per inode), mknod, statfs, xattrs of the user namespace only', async () => {
  const g = await mounted();
  const target = 'some/where/' + 'y'.repeat(200);
  const link = Guest.nodeid(g.ok(OP.SYMLINK, { args: cat(cstr('sl'), cstr(target)) }));
  assert.is(Buffer.from(g.ok(OP.READLINK, { nodeid: link }).payload).toString('latin1'), target);
  const { nodeid } = create(g, 'f');
  const linked = g.ok(OP.LINK, { nodeid: 1n, args: cat(u64s(nodeid), cstr('f2')) });
  assert.is(Guest.nodeid(linked), nodeid);
  assert.is(linked.view.getUint32(40 + 64, true), 2, 'nlink');
  g.ok(OP.MKNOD, { args: cat(u32s(0o010644, 0, 0o022, 0), cstr('fifo')) });
  const st = g.ok(OP.STATFS);
  assert.is(st.payload.length, 80);
  assert.is(st.view.getUint32(44, true), 255);
  const value = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
  g.ok(OP.SETXATTR, { nodeid, args: cat(u32s(value.length, 0), cstr('user.k'), value), splits: [45, 50, 1000] });
  assert.is(g.call(OP.SETXATTR, { nodeid, args: cat(u32s(1, 0), cstr('trusted.k'), Uint8Array.of(1)) }).error, -E.PERM);
  assert.is(g.call(OP.SETXATTR, { nodeid, args: cat(u32s(2, 0), cstr('user.k'), Uint8Array.of(1)) }).error, -E.INVAL, 'size disagrees');
  assert.is(g.ok(OP.GETXATTR, { nodeid, args: cat(u32s(0, 0), cstr('user.k')) }).view.getUint32(0, true), 3000);
  assert.equal([...g.ok(OP.GETXATTR, { nodeid, args: cat(u32s(4096, 0), cstr('user.k')) }).payload], [...value]);
  assert.is(g.call(OP.GETXATTR, { nodeid, args: cat(u32s(10, 0), cstr('user.k')) }).error, -E.RANGE);
  assert.is(g.call(OP.GETXATTR, { nodeid, args: cat(u32s(100, 0), cstr('security.selinux')) }).error, -E.NODATA);
  const list = g.ok(OP.LISTXATTR, { nodeid, args: u32s(4096, 0) });
  assert.is(Buffer.from(list.payload).toString('latin1'), 'user.k\0', 'trusted.* filtered out');
  assert.is(g.ok(OP.LISTXATTR, { nodeid, args: u32s(0, 0) }).view.getUint32(0, true), 7);
  assert.is(g.call(OP.LISTXATTR, { nodeid, args: u32s(3, 0) }).error, -E.RANGE);
  g.ok(OP.REMOVEXATTR, { nodeid, args: cstr('user.k') });
  assert.is(g.call(OP.REMOVEXATTR, { nodeid, args: cstr('system.posix_acl_access') }).error, -E.PERM);
  assert.equal(g.h.violations, []);
});

test('fs: cache modes set timeouts and open flags', async () => {
  for (const [cache, timeout, fileFlags, dirFlags] of [['none', 0n, 1, 0], ['always', 86400n, 2, 8 | 2]] as const) {
    const g = await mounted({ cache });
    const { nodeid, reply } = create(g, 'x');
    assert.is(reply.view.getBigUint64(16, true), timeout);
    assert.is(reply.view.getUint32(136, true), fileFlags);
    assert.is(g.ok(OP.OPEN, { nodeid, args: u32s(0, 0) }).view.getUint32(8, true), fileFlags);
    assert.is(g.ok(OP.OPENDIR, { nodeid: 1n, args: u32s(0, 0) }).view.getUint32(8, true), dirFlags);
    assert.is(g.ok(OP.GETATTR, { nodeid, args: new Uint8Array(16) }).view.getBigUint64(0, true), timeout);
  }
});

test('fs: a read-only share answers -EROFS to every modifying request without calling the host', async () => {
  const g = await mounted({ readOnly: true });
  g.h.root.children.set('f', newNode(S_IFREG | 0o644));
  const nodeid = Guest.nodeid(g.lookup('f'));
  const fh = open(g, nodeid, 0);
  g.ok(OP.READ, { nodeid, args: ioArgs(fh, 0n, 10) });
  const refused: [number, Request][] = [
    [OP.SETATTR, { nodeid, args: new Uint8Array(88) }],
    [OP.CREATE, { args: cat(u32s(O_RDWR, 0o644, 0, 0), cstr('n')) }],
    [OP.MKNOD, { args: cat(u32s(0o100644, 0, 0, 0), cstr('n')) }],
    [OP.MKDIR, { args: cat(u32s(0o755, 0), cstr('n')) }],
    [OP.SYMLINK, { args: cat(cstr('n'), cstr('t')) }],
    [OP.LINK, { args: cat(u64s(nodeid), cstr('n')) }],
    [OP.UNLINK, { args: cstr('f') }],
    [OP.RMDIR, { args: cstr('f') }],
    [OP.RENAME, { args: cat(u64s(1n), cstr('f'), cstr('g')) }],
    [OP.RENAME2, { args: cat(u64s(1n), u32s(0, 0), cstr('f'), cstr('g')) }],
    [OP.WRITE, { nodeid, args: ioArgs(fh, 0n, 1), data: Uint8Array.of(1) }],
    [OP.FALLOCATE, { nodeid, args: cat(u64s(fh, 0n, 1n), u32s(0, 0)) }],
    [OP.SETXATTR, { nodeid, args: cat(u32s(1, 0), cstr('user.a'), Uint8Array.of(1)) }],
    [OP.REMOVEXATTR, { nodeid, args: cstr('user.a') }],
    [OP.OPEN, { nodeid, args: u32s(O_RDWR, 0) }],
    [OP.OPEN, { nodeid, args: u32s(O_TRUNC, 0) }],
  ];
  for (const [op, r] of refused) assert.is(g.call(op, r).error, -E.ROFS, `opcode ${op}`);
  assert.equal(g.h.violations, []);
});

test('fs: hostile requests: short, oversized, bad names, unknown nodeids and fhs, unknown opcodes', async () => {
  const g = await mounted();
  const { nodeid, fh } = create(g, 'f');
  const lookups = () => g.h.calls.filter((c) => c === 'lookup').length;
  const before = lookups();
  // Header shorter than 40 bytes, len field lying either way.
  assert.is(g.raw(new Uint8Array(20), 64).error, -E.INVAL);
  assert.is(g.call(OP.LOOKUP, { args: cstr('f'), len: 30 }).error, -E.INVAL);
  assert.is(g.call(OP.LOOKUP, { args: cstr('f'), len: 4096 }).error, -E.INVAL);
  // Short args.
  for (const op of [OP.GETATTR, OP.SETATTR, OP.MKNOD, OP.MKDIR, OP.RENAME, OP.RENAME2, OP.LINK, OP.OPEN, OP.CREATE,
    OP.READ, OP.WRITE, OP.RELEASE, OP.FSYNC, OP.SETXATTR, OP.GETXATTR, OP.LISTXATTR, OP.FALLOCATE, OP.READDIR,
    OP.READDIRPLUS, OP.LSEEK, OP.FLUSH]) {
    assert.is(g.call(op, { nodeid, args: new Uint8Array(7) }).error, -E.INVAL, `opcode ${op}`);
  }
  // Names.
  const bad: [Uint8Array, number][] = [
    [cstr('..'), -E.INVAL], [cstr('.'), -E.INVAL], [cstr('a/b'), -E.INVAL], [cstr(''), -E.INVAL],
    [cat(cstr('a'), cstr('b')), -E.INVAL], [Uint8Array.from(Buffer.from('abc')), -E.INVAL],
    [cstr('n'.repeat(256)), -E.NAMETOOLONG], [new Uint8Array(0), -E.INVAL],
  ];
  for (const [name, error] of bad) {
    assert.is(g.call(OP.LOOKUP, { args: name }).error, error);
    assert.is(g.call(OP.MKDIR, { args: cat(u32s(0o755, 0), name) }).error, error);
    assert.is(g.call(OP.RENAME, { args: cat(u64s(1n), cstr('f'), name) }).error, error);
  }
  assert.is(g.call(OP.SYMLINK, { args: cat(cstr('s'), cstr('t'.repeat(4096))) }).error, -E.NAMETOOLONG);
  g.ok(OP.LOOKUP, { args: cstr('f') });
  assert.is(g.lookup('n'.repeat(255)).error, -E.NOENT, 'NAME_MAX bytes is a name');
  // Unknown handles.
  assert.is(g.call(OP.GETATTR, { nodeid: 999n, args: new Uint8Array(16) }).error, -E.STALE);
  assert.is(g.call(OP.GETATTR, { nodeid: 0n, args: new Uint8Array(16) }).error, -E.STALE);
  assert.is(g.call(OP.GETATTR, { nodeid: 2n ** 64n - 1n, args: new Uint8Array(16) }).error, -E.STALE);
  assert.is(g.call(OP.LINK, { args: cat(u64s(12345n), cstr('x')) }).error, -E.STALE);
  assert.is(g.call(OP.READ, { nodeid, args: ioArgs(fh + 1n, 0n, 1) }).error, -E.STALE);
  assert.is(g.call(OP.READ, { nodeid, args: ioArgs(2n ** 63n, 0n, 1) }).error, -E.STALE);
  // Sizes.
  assert.is(g.call(OP.READ, { nodeid, args: ioArgs(fh, 0n, MAX_WRITE + 1), replySize: MAX_WRITE + 64 }).error, -E.INVAL);
  assert.is(g.call(OP.READ, { nodeid, args: ioArgs(fh, 0n, 4096), replySize: 16 + 4095 }).error, -E.INVAL);
  assert.is(g.call(OP.READ, { nodeid, args: ioArgs(fh, 2n ** 63n, 1) }).error, -E.INVAL);
  assert.is(g.call(OP.WRITE, { nodeid, args: ioArgs(fh, 0n, 10), data: new Uint8Array(9) }).error, -E.INVAL);
  assert.is(g.call(OP.WRITE, { nodeid, args: ioArgs(fh, 0n, 0xffff_ffff), data: new Uint8Array(9) }).error, -E.INVAL);
  assert.is(g.call(OP.FALLOCATE, { nodeid, args: cat(u64s(fh, 2n ** 63n - 1n, 2n), u32s(0, 0)) }).error, -E.INVAL);
  assert.is(g.call(OP.SETXATTR, { nodeid, args: cat(u32s(65537, 0), cstr('user.a'), new Uint8Array(65537)) }).error, -E.INVAL);
  assert.is(g.call(OP.GETXATTR, { nodeid, args: cat(u32s(0, 0), cstr('user.' + 'a'.repeat(251))) }).error, -E.RANGE);
  assert.is(g.call(OP.SETXATTR, { nodeid, args: new Uint8Array(100_000) }).error, -E.INVAL, 'args beyond the scratch');
  // Replies that would not fit: -EINVAL, and nothing happened on the host.
  assert.is(g.call(OP.LOOKUP, { args: cstr('f'), replySize: 16 + 127 }).error, -E.INVAL);
  assert.is(g.call(OP.MKDIR, { args: cat(u32s(0o755, 0), cstr('nope')), replySize: 100 }).error, -E.INVAL);
  assert.is(g.call(OP.CREATE, { args: cat(u32s(O_RDWR, 0o644, 0, 0), cstr('nope')), replySize: 16 + 143 }).error, -E.INVAL);
  assert.is(g.call(OP.INIT, { args: new Uint8Array(64) }).error, -E.IO);
  assert.not.ok(g.h.root.children.has('nope'));
  // Unknown and unserved opcodes.
  for (const op of [0, 7, OP.GETLK, OP.ACCESS, 39, 47, 48, 1000, 0xffff_ffff]) {
    assert.is(g.call(op, { args: new Uint8Array(64) }).error, -E.NOSYS, `opcode ${op}`);
  }
  assert.is(lookups() - before, 2, 'only the two valid LOOKUPs reached the host');
  assert.equal(g.h.violations, []);
  assert.is(g.h.devices.virtioFailure(0), 0);
});

test('fs: a chain without room for the out header fails the device', async () => {
  const g = await mounted();
  const r = g.call(OP.GETATTR, { args: new Uint8Array(16), replySize: 15 });
  assert.is(r.used, -1, 'no used entry');
  assert.is(g.h.devices.virtioFailure(0), NO_REPLY_ROOM_FAILURE);
  assert.ok(g.dev.read(REG.STATUS) & STATUS.NEEDS_RESET);
});

test('fs: FORGET and BATCH_FORGET count lookups; the host handle closes at 0; unknown nodeids are ignored', async () => {
  const g = await mounted();
  const { nodeid } = create(g, 'f');
  g.lookup('f');
  g.lookup('f');
  assert.is(g.h.nodes.size, 2, 'root + one handle for three lookups');
  const forget = (id: bigint, n: bigint, queue: 0 | 1 = 0) => {
    const r = g.call(OP.FORGET, { nodeid: id, args: u64s(n), replySize: 0, queue });
    assert.is(r.used, 0, 'FORGET gets no reply');
  };
  forget(nodeid, 2n);
  assert.is(g.h.nodes.size, 2);
  forget(999n, 1n);
  forget(1n, 100n);
  forget(nodeid, 1n, 1);
  assert.is(g.h.nodes.size, 1, 'forgotten at 0');
  assert.is(g.call(OP.GETATTR, { nodeid, args: new Uint8Array(16) }).error, -E.STALE);
  forget(nodeid, 1n);
  // BATCH_FORGET, with a count larger than the entries present.
  const a = create(g, 'a').nodeid;
  const b = create(g, 'b').nodeid;
  g.call(OP.BATCH_FORGET, { args: cat(u32s(1000, 0), u64s(a, 1n, b, 5n, 77n, 1n)), replySize: 0, queue: 0 });
  assert.is(g.h.nodes.size, 1);
  g.call(OP.BATCH_FORGET, { args: u32s(3), replySize: 0, queue: 0 });
  g.call(OP.INTERRUPT, { args: u64s(5n), replySize: 0, queue: 0 });
  assert.equal(g.h.violations, []);
  assert.is(g.h.devices.virtioFailure(0), 0);
});

test('fs: DESTROY and device reset close every handle; a new session starts with INIT', async () => {
  const g = await mounted();
  const { nodeid } = create(g, 'f');
  open(g, nodeid);
  g.ok(OP.DESTROY);
  assert.is(g.h.nodes.size, 1);
  assert.is(g.h.files.size, 0);
  assert.is(g.call(OP.GETATTR, { args: new Uint8Array(16) }).error, -E.IO);
  assert.is(g.init().error, 0);
  open(g, Guest.nodeid(g.lookup('f')));
  g.dev.write(REG.STATUS, 0);
  assert.is(g.h.nodes.size, 1);
  assert.is(g.h.files.size, 0);
  assert.equal(g.h.violations, []);
});

test('fs: snapshot keeps the INIT state; after restore only the root nodeid is valid (-ESTALE otherwise)', async () => {
  const g = await mounted();
  const { nodeid, fh } = create(g, 'f');
  const blob = g.h.devices.saveState();
  const g2 = new Guest(await fakeHost());
  g2.h.root.children.set('f', newNode(S_IFREG));
  // A snapshot holds guest RAM too: the rings as the guest left them.
  new Uint8Array(g2.h.devices.memory.buffer).set(new Uint8Array(g.h.devices.memory.buffer, 0, RAM));
  g2.h.devices.restoreState(blob);
  // The restored queues continue where the guest left them.
  g2.dev.queues = g2.queues = g.queues.map((q) => ({ ...q, device: g2.dev }));
  assert.is(g2.call(OP.GETATTR, { nodeid, args: new Uint8Array(16) }).error, -E.STALE);
  assert.is(g2.call(OP.READ, { nodeid, args: ioArgs(fh, 0n, 1) }).error, -E.STALE);
  g2.ok(OP.GETATTR, { args: new Uint8Array(16) });
  assert.ok(Guest.nodeid(g2.lookup('f')) > 1n);
  assert.equal(g2.h.violations, []);
});

test('fs: the inode table is bounded: lookups beyond it answer -ENFILE and close the new handle', async () => {
  const g = await mounted();
  // Many distinct inodes under the root; the fake hands out fresh ones.
  for (let i = 0; i < 65536; i++) g.h.root.children.set(`n${i}`, newNode(S_IFREG));
  g.h.root.children.set('last', newNode(S_IFREG));
  for (let i = 0; i < 65536; i++) assert.is(g.lookup(`n${i}`).error, 0);
  const handles = g.h.nodes.size;
  assert.is(g.lookup('last').error, -E.NFILE);
  assert.is(g.h.nodes.size, handles, 'the extra handle was closed');
  assert.is(g.lookup('n5').error, 0, 'a known inode still resolves');
  assert.equal(g.h.violations, []);
});

/** The native backend (host/virtiofs/, native/fs_share.cc), when the addon was built with it. */
const addon = native();
const haveNativeShares = typeof (addon as { fsShareOpen?: unknown }).fsShareOpen === 'function';

/** A device serving tmp dir `root` through the real backend, its session initialized. */
async function realShare(root: string): Promise<{ g: Guest<DeviceHost>; shares: FsShares }> {
  let devices: Devices | undefined;
  const shares = new FsShares(addon, () => devices!.memory.buffer);
  const noop = () => {};
  devices = await loadDevices({
    irqLine: noop, consoleWrite: noop, resetRequest: noop, guestExit: noop, wallClockSeconds: () => 0,
    fillRandom: noop, ioSubmit: noop, irqPulse: noop, fs: shares.callbacks,
  });
  devices.setGuestRamBytes(RAM);
  shares.open(SHARE, root, false);
  devices.addVirtioFs(VIRTIO_BASE, VIRTIO_GSI, TAG, SHARE, false, 'auto');
  const g = new Guest<DeviceHost>({ devices });
  assert.is(g.init().error, 0);
  return { g, shares };
}

if (haveNativeShares) {
  test('fs: round trips against the native backend on a tmp dir', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-virtio-fs-'));
    const { g, shares } = await realShare(root);
    try {
      fs.writeFileSync(path.join(root, 'hello.txt'), 'hello from the host');
      const hello = g.lookup('hello.txt');
      assert.is(hello.error, 0);
      const helloId = Guest.nodeid(hello);
      assert.is(Guest.nodeid(g.lookup('hello.txt')), helloId, 'one nodeid per inode');
      const fh = open(g, helloId, 0);
      assert.is(Buffer.from(g.ok(OP.READ, { nodeid: helloId, args: ioArgs(fh, 6n, 100) }).payload).toString(), 'from the host');
      const dir = mkdir(g, 'sub');
      const { nodeid, fh: wfh } = create(g, 'new.bin', dir);
      const data = Uint8Array.from({ length: 70000 }, (_, i) => (i * 13) & 0xff);
      assert.is(g.ok(OP.WRITE, { nodeid, args: ioArgs(wfh, 0n, data.length), data, splits: [80, 4096] }).view.getUint32(0, true), data.length);
      assert.equal(new Uint8Array(fs.readFileSync(path.join(root, 'sub', 'new.bin'))), data);
      const setattr = new Uint8Array(88);
      new DataView(setattr.buffer).setUint32(0, 8, true);
      new DataView(setattr.buffer).setBigUint64(16, 1000n, true);
      assert.is(g.ok(OP.SETATTR, { nodeid, args: setattr }).view.getBigUint64(16 + 8, true), 1000n);
      g.ok(OP.SYMLINK, { nodeid: dir, args: cat(cstr('link'), cstr('../hello.txt')) });
      assert.is(fs.readlinkSync(path.join(root, 'sub', 'link')), '../hello.txt');
      const linkId = Guest.nodeid(g.lookup('link', dir));
      assert.is(Buffer.from(g.ok(OP.READLINK, { nodeid: linkId }).payload).toString(), '../hello.txt');
      assert.is(Guest.nodeid(g.ok(OP.LINK, { nodeid: 1n, args: cat(u64s(nodeid), cstr('hard')) })), nodeid);
      const dfh = open(g, dir, 0, OP.OPENDIR);
      const names = dirents(g.ok(OP.READDIRPLUS, { nodeid: dir, args: ioArgs(dfh, 0n, 4096), replySize: 16 + 4096 }), true);
      assert.equal(names.map((e) => e.name).sort(), ['.', '..', 'link', 'new.bin']);
      assert.is(names.find((e) => e.name === 'new.bin')!.nodeid, nodeid);
      g.ok(OP.RENAME, { nodeid: dir, args: cat(u64s(1n), cstr('new.bin'), cstr('moved.bin')) });
      assert.ok(fs.existsSync(path.join(root, 'moved.bin')));
      g.ok(OP.UNLINK, { nodeid: dir, args: cstr('link') });
      assert.is(g.ok(OP.STATFS).payload.length, 80);
      const xattr = g.call(OP.SETXATTR, { nodeid, args: cat(u32s(3, 0), cstr('user.k'), Uint8Array.of(1, 2, 3)) });
      if (xattr.error === 0) {
        assert.equal([...g.ok(OP.GETXATTR, { nodeid, args: cat(u32s(64, 0), cstr('user.k')) }).payload], [1, 2, 3]);
      } else {
        assert.is(xattr.error, -95, 'user xattrs unsupported by the tmp file system');
      }
      // Names that would leave the share never get that far.
      assert.is(g.lookup('..').error, -E.INVAL);
      assert.is(g.lookup('a/b').error, -E.INVAL);
      g.ok(OP.RELEASE, { args: cat(u64s(wfh), u32s(0, 0), u64s(0n)) });
      g.ok(OP.DESTROY);
    } finally {
      shares.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
}

const opcodeArb = fc.oneof(
  fc.constantFrom(...Object.values(OP)),
  fc.integer({ min: 0, max: 60 }),
  fc.nat(),
);
const nameArb = fc.oneof(
  fc.constantFrom('f', 'd', 'x', '.', '..', 'a/b', '', 'user.k', 'trusted.k', 'n'.repeat(255), 'n'.repeat(256)),
  fc.string({ maxLength: 8 }),
);
/** Well-formed requests on a few names, nodeids and fhs, so sessions get deep (then possibly cut short). */
const wellFormedArb = fc.record({
  op: fc.constantFrom('lookup', 'create', 'mkdir', 'unlink', 'rmdir', 'forget', 'open', 'opendir', 'release', 'read',
    'write', 'readdirplus', 'symlink', 'link', 'rename', 'setxattr', 'listxattr', 'getattr'),
  nodeid: fc.bigInt({ min: 1n, max: 10n }),
  other: fc.bigInt({ min: 1n, max: 10n }),
  fh: fc.bigInt({ min: 0n, max: 8n }),
  name: fc.constantFrom('f', 'd', 'x', 'y'),
  name2: fc.constantFrom('f', 'd', 'x', 'y'),
  size: fc.oneof(fc.nat({ max: 300 }), fc.constant(4096)),
  count: fc.bigInt({ min: 1n, max: 3n }),
  cut: fc.oneof(fc.constant(0), fc.constant(0), fc.nat({ max: 20 })),
}).map((w) => {
  const dirIo = ioArgs(w.fh, 0n, w.size);
  const [opcode, args, data]: [number, Uint8Array, Uint8Array?] = {
    lookup: () => [OP.LOOKUP, cstr(w.name)],
    create: () => [OP.CREATE, cat(u32s(O_RDWR, 0o644, 0, 0), cstr(w.name))],
    mkdir: () => [OP.MKDIR, cat(u32s(0o755, 0), cstr(w.name))],
    unlink: () => [OP.UNLINK, cstr(w.name)],
    rmdir: () => [OP.RMDIR, cstr(w.name)],
    forget: () => [OP.FORGET, u64s(w.count)],
    open: () => [OP.OPEN, u32s(O_RDWR, 0)],
    opendir: () => [OP.OPENDIR, u32s(0, 0)],
    release: () => [OP.RELEASE, cat(u64s(w.fh), u32s(0, 0), u64s(0n))],
    read: () => [OP.READ, dirIo],
    write: () => [OP.WRITE, dirIo, new Uint8Array(w.size)],
    readdirplus: () => [OP.READDIRPLUS, dirIo],
    symlink: () => [OP.SYMLINK, cat(cstr(w.name), cstr(w.name2))],
    link: () => [OP.LINK, cat(u64s(w.other), cstr(w.name))],
    rename: () => [OP.RENAME, cat(u64s(w.other), cstr(w.name), cstr(w.name2))],
    setxattr: () => [OP.SETXATTR, cat(u32s(2, 0), cstr('user.' + w.name), Uint8Array.of(1, 2))],
    listxattr: () => [OP.LISTXATTR, u32s(w.size, 0)],
    getattr: () => [OP.GETATTR, new Uint8Array(16)],
  }[w.op]() as [number, Uint8Array, Uint8Array?];
  const body = cat(args, data ?? new Uint8Array(0));
  return {
    opcode, nodeid: w.nodeid, head: body.subarray(0, Math.max(0, body.length - w.cut)), names: [] as string[],
    tail: new Uint8Array(0), lenDelta: 0, replySize: 8192, splits: [] as number[], replySplits: [] as number[],
    queue: (w.op === 'forget' ? 0 : 1) as 0 | 1,
  };
});
const randomArb = fc.record({
  opcode: opcodeArb,
  nodeid: fc.oneof(fc.constantFrom(0n, 1n, 2n, 3n, 4n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  head: fc.oneof(
    fc.constant(new Uint8Array(0)),
    fc.uint8Array({ maxLength: 48 }),
    fc.record({ fh: fc.nat({ max: 4 }), off: fc.nat({ max: 20000 }), size: fc.oneof(fc.nat({ max: 5000 }), fc.nat()) })
      .map(({ fh, off, size }) => ioArgs(BigInt(fh), BigInt(off), size)),
    fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => u32s(a, b)),
  ),
  names: fc.array(nameArb, { maxLength: 2 }),
  tail: fc.uint8Array({ maxLength: 64 }),
  lenDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -50, max: 50 })),
  replySize: fc.oneof(fc.constant(8192), fc.integer({ min: 16, max: 300 }), fc.constant(16)),
  splits: fc.array(fc.nat({ max: 400 }), { maxLength: 3 }),
  replySplits: fc.array(fc.nat({ max: 400 }), { maxLength: 3 }),
  queue: fc.constantFrom(0 as const, 1 as const),
});

test('fs: random requests never throw, never fail the device, never show the host an unchecked pointer, name or handle', async () => {
  const h = await fakeHost();
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(randomArb, wellFormedArb), { minLength: 1, maxLength: 40 }), async (requests) => {
      // The same tree each run, whatever the last one did to it.
      const dir = newNode(S_IFDIR | 0o755);
      dir.children.set('x', newNode(S_IFREG));
      h.root.children = new Map([['f', newNode(S_IFREG | 0o644)], ['d', dir]]);
      const g = new Guest(h);
      assert.is(g.init().error, 0);
      // Some real handles to aim at: nodeids 2 and 3, fhs 0 and 1.
      open(g, Guest.nodeid(g.lookup('f')), O_RDWR);
      open(g, Guest.nodeid(g.lookup('d')), 0, OP.OPENDIR);
      for (const r of requests) {
        const args = cat(r.head, ...r.names.map(cstr), r.tail);
        const reply = g.call(r.opcode, {
          nodeid: r.nodeid, args, len: 40 + args.length + r.lenDelta, replySize: r.replySize, splits: r.splits,
          replySplits: r.replySplits, queue: r.queue,
        });
        assert.ok(reply.used === 0 || reply.used >= 16, `used ${reply.used}`);
        assert.ok(reply.used <= r.replySize, 'never past the chain');
        if (reply.used >= 16) assert.ok(reply.error <= 0 && reply.error >= -4095);
        assert.equal(h.violations, []);
      }
      assert.is(h.devices.virtioFailure(0), 0, 'replies always had room for the header');
      // A random DESTROY may have ended the session already; either way every handle is closed after this.
      g.call(OP.DESTROY);
      assert.is(h.nodes.size, 1, 'DESTROY closed every node handle');
      assert.is(h.files.size, 0);
    }),
    { numRuns: 150 },
  );
});

test.run();
