// The virtio-fs host side (native/fs_share.cc through host/virtiofs/backend.ts) on a tmp dir, without KVM:
// every op the device model can call, and an escape table of what a hostile guest may try. base/canary*
// lie outside the share: no test may read or change them through it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../../host/native.js';
import { FsShares } from '../../host/virtiofs/backend.js';
import type { FsCallbacks } from '../../host/wasm/devices.js';
import { validateShares, virtioDevices } from '../../host/vmm/config.js';
import { parseShareOption } from '../../host/cli/boot.js';

const addon = native();
const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'hako-fs-share-')));
const root = path.join(base, 'share');
const roRoot = path.join(base, 'ro-share');
const CANARY = path.join(base, 'canary.txt');
const CANARY_DIR = path.join(base, 'canary');
const openFds = () => fs.readdirSync('/proc/self/fd').length;

const EPERM = -1, ENOENT = -2, ENXIO = -6, EBADF = -9, EEXIST = -17, ENOTDIR = -20, EISDIR = -21, EINVAL = -22,
  EROFS = -30, ENAMETOOLONG = -36, ENODATA = -61, ELOOP = -40, EOPNOTSUPP = -95, EFAULT = -14, ENODEV = -19;
const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_DIRECTORY } = fs.constants;
const S_IFMT = 0o170000, S_IFREG = 0o100000, S_IFDIR = 0o040000, S_IFLNK = 0o120000, S_IFIFO = 0o010000,
  S_IFCHR = 0o020000, S_IFBLK = 0o060000;
const ROOT = 0;

// Scratch layout in the test's "Wasm memory".
const NAME = 0x1000, NAME2 = 0x1400, STAT = 0x2000, ATTR = 0x2100, IOV = 0x3000, BUF = 0x10000;
const memory = new WebAssembly.Memory({ initial: 4 }); // 256 KiB
const bytes = () => new Uint8Array(memory.buffer);
const view = () => new DataView(memory.buffer);

function put(at: number, data: string | Uint8Array): number {
  const b = typeof data === 'string' ? Buffer.from(data) : data;
  bytes().set(b, at);
  return b.length;
}

interface Stat { ino: bigint; size: bigint; mode: number; nlink: number; uid: number; gid: number; rdev: number; dev: bigint }
function readStat(at = STAT): Stat {
  const v = view();
  return {
    ino: v.getBigUint64(at, true), size: v.getBigUint64(at + 8, true), mode: v.getUint32(at + 60, true),
    nlink: v.getUint32(at + 64, true), uid: v.getUint32(at + 68, true), gid: v.getUint32(at + 72, true),
    rdev: v.getUint32(at + 76, true), dev: v.getBigUint64(at + 88, true),
  };
}

/** A guest's view of one share: the calls the device model makes, with names and data in `memory`. */
class Client {
  constructor(readonly cb: FsCallbacks, readonly share: number) {}
  lookup(parent: number, name: string | Uint8Array): number {
    return this.cb.lookup(this.share, parent, NAME, put(NAME, name), STAT);
  }
  /** Walks `rel` one component at a time from the root, as the guest's kernel would. */
  walk(rel: string): number {
    let node = ROOT;
    for (const part of rel.split('/')) {
      node = this.lookup(node, part);
      if (node < 0) return node;
    }
    return node;
  }
  getattr(node: number): Stat | number {
    const r = this.cb.getattr(this.share, node, STAT);
    return r < 0 ? r : readStat();
  }
  open(node: number, flags: number): number { return this.cb.open(this.share, node, flags); }
  read(file: number, offset: number, length: number): string | number {
    const v = view();
    v.setBigUint64(IOV, BigInt(BUF), true);
    v.setBigUint64(IOV + 8, BigInt(length), true);
    const n = this.cb.read(this.share, file, BigInt(offset), IOV, 1);
    return n < 0 ? n : Buffer.from(memory.buffer, BUF, n).toString();
  }
  write(file: number, offset: number, text: string): number {
    const v = view();
    v.setBigUint64(IOV, BigInt(BUF), true);
    v.setBigUint64(IOV + 8, BigInt(put(BUF, text)), true);
    return this.cb.write(this.share, file, BigInt(offset), IOV, 1);
  }
  create(parent: number, name: string, mode = 0o644, exclusive = true, uid = 0, gid = 0): number {
    return this.cb.create(this.share, parent, NAME, put(NAME, name), mode, exclusive, uid, gid, STAT);
  }
  mkdir(parent: number, name: string, mode = 0o755, uid = 0, gid = 0): number {
    return this.cb.mkdir(this.share, parent, NAME, put(NAME, name), mode, uid, gid, STAT);
  }
  mknod(parent: number, name: string, mode: number, rdev = 0): number {
    return this.cb.mknod(this.share, parent, NAME, put(NAME, name), mode, rdev, 0, 0, STAT);
  }
  symlink(parent: number, name: string, target: string, uid = 0, gid = 0): number {
    const nameLen = put(NAME, name);
    return this.cb.symlink(this.share, parent, NAME, nameLen, NAME2, put(NAME2, target), uid, gid, STAT);
  }
  link(node: number, parent: number, name: string): number {
    return this.cb.link(this.share, node, parent, NAME, put(NAME, name), STAT);
  }
  unlink(parent: number, name: string, directory = false): number {
    return this.cb.unlink(this.share, parent, NAME, put(NAME, name), directory);
  }
  rename(oldParent: number, oldName: string, newParent: number, newName: string, flags = 0): number {
    const oldLen = put(NAME, oldName);
    return this.cb.rename(this.share, oldParent, NAME, oldLen, newParent, NAME2, put(NAME2, newName), flags);
  }
  readlink(node: number): string | number {
    const n = this.cb.readlink(this.share, node, BUF, 4096);
    return n < 0 ? n : Buffer.from(memory.buffer, BUF, n).toString();
  }
  setattr(node: number, attrs: { mode?: number; uid?: number; size?: number; mtime?: number }, file = -1): number {
    const v = view();
    bytes().fill(0, ATTR, ATTR + 48);
    let valid = 0;
    if (attrs.mode !== undefined) { valid |= 1; v.setUint32(ATTR + 4, attrs.mode, true); }
    if (attrs.uid !== undefined) { valid |= 2; v.setUint32(ATTR + 8, attrs.uid, true); }
    if (attrs.size !== undefined) { valid |= 8; v.setBigUint64(ATTR + 16, BigInt(attrs.size), true); }
    if (attrs.mtime !== undefined) { valid |= 32; v.setBigInt64(ATTR + 32, BigInt(attrs.mtime), true); }
    v.setUint32(ATTR, valid, true);
    return this.cb.setattr(this.share, node, file, ATTR, STAT);
  }
  /** Every entry of directory file `file`, reading `cap` bytes a call: [name, type] pairs. */
  readdir(file: number, cap = 4096): [string, number][] | number {
    const entries: [string, number][] = [];
    let offset = 0n;
    for (let calls = 0; calls < 10_000; calls++) {
      const n = this.cb.readdir(this.share, file, offset, BUF, cap);
      if (n < 0) return n;
      if (n === 0) return entries;
      const v = view();
      for (let at = BUF; at < BUF + n;) {
        const nameLen = v.getUint32(at + 16, true);
        entries.push([Buffer.from(memory.buffer, at + 24, nameLen).toString(), v.getUint32(at + 20, true)]);
        offset = v.getBigInt64(at + 8, true);
        at += (24 + nameLen + 7) & ~7;
      }
    }
    throw new Error('readdir did not end');
  }
  setxattr(node: number, name: string, value: string, flags = 0): number {
    const nameLen = put(NAME, name);
    return this.cb.setxattr(this.share, node, NAME, nameLen, BUF, put(BUF, value), flags);
  }
  getxattr(node: number, name: string): string | number {
    const n = this.cb.getxattr(this.share, node, NAME, put(NAME, name), BUF, 256);
    return n < 0 ? n : Buffer.from(memory.buffer, BUF, n).toString();
  }
}

function setup(): void {
  fs.writeFileSync(CANARY, 'CANARY');
  fs.mkdirSync(CANARY_DIR);
  fs.writeFileSync(path.join(CANARY_DIR, 'f'), 'CANARY');
  fs.mkdirSync(path.join(root, 'dir', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(root, 'file.txt'), 'hello, share');
  fs.writeFileSync(path.join(root, 'dir', 'sub', 'deep'), 'deep');
  fs.symlinkSync('/', path.join(root, 'to-root'));
  fs.symlinkSync('../..', path.join(root, 'to-up'));
  fs.symlinkSync(CANARY, path.join(root, 'to-canary'));
  fs.symlinkSync(path.join(root, 'chain2'), path.join(root, 'chain1'));
  fs.symlinkSync(CANARY_DIR, path.join(root, 'chain2'));
  fs.symlinkSync('/proc/self/root', path.join(root, 'magic'));
  fs.mkdirSync(roRoot);
  fs.writeFileSync(path.join(roRoot, 'file.txt'), 'read only');
  fs.mkdirSync(path.join(roRoot, 'dir'));
  // Old times: any read of a canary through the share would move its atime (relatime).
  for (const f of [CANARY, path.join(CANARY_DIR, 'f')]) fs.utimesSync(f, 1000, 1000);
}
setup();

/** The canaries are as setup() left them: never read (atime) nor changed. */
function assertCanariesUntouched(): void {
  for (const f of [CANARY, path.join(CANARY_DIR, 'f')]) {
    const st = fs.statSync(f);
    assert.is(st.atimeMs, 1000_000, `${f} was read`);
    assert.is(st.mtimeMs, 1000_000, `${f} was written`);
    assert.is(st.size, 6);
  }
  assert.equal(fs.readdirSync(CANARY_DIR), ['f']);
  // Reading them here moved their atimes: set them back.
  for (const f of [CANARY, path.join(CANARY_DIR, 'f')]) fs.utimesSync(f, 1000, 1000);
}

const shares = new FsShares(addon, () => memory.buffer);
shares.open(0, root, false);
shares.open(1, roRoot, true);
const c = new Client(shares.callbacks, 0);
const ro = new Client(shares.callbacks, 1);

test.after(() => {
  shares.close();
  fs.rmSync(base, { recursive: true, force: true });
});

test('lookup and getattr fill the 96-byte stat record like lstat', () => {
  const node = c.walk('file.txt');
  assert.ok(node > 0, `lookup: ${node}`);
  const st = fs.lstatSync(path.join(root, 'file.txt'), { bigint: true });
  const got = c.getattr(node) as Stat;
  assert.is(got.ino, st.ino);
  assert.is(got.size, 12n);
  assert.is(got.mode, Number(st.mode));
  assert.is(got.nlink, 1);
  assert.is(got.dev, st.dev);
  const rootStat = c.getattr(ROOT) as Stat;
  assert.is(rootStat.mode & S_IFMT, S_IFDIR);
  assert.is(c.walk('dir/sub/deep') > 0, true);
  assert.is(c.lookup(ROOT, 'missing'), ENOENT);
  assert.is(c.lookup(node, 'x'), ENOTDIR);
});

test('open, read, write, fsync, fallocate, lseek and release', () => {
  const node = c.walk('file.txt');
  const file = c.open(node, O_RDWR);
  assert.ok(file >= 0, `open: ${file}`);
  assert.is(c.read(file, 0, 100), 'hello, share');
  assert.is(c.read(file, 7, 3), 'sha');
  assert.is(c.write(file, 12, '!!'), 2);
  assert.is(fs.readFileSync(path.join(root, 'file.txt'), 'utf8'), 'hello, share!!');
  assert.is(shares.callbacks.fsync(0, file, true), 0);
  assert.is(shares.callbacks.fallocate(0, file, 0, 0n, 8192n), 0);
  assert.is(fs.statSync(path.join(root, 'file.txt')).size, 8192);
  assert.is(shares.callbacks.lseek(0, file, 0n, 3 /* SEEK_DATA */), 0n);
  assert.is(shares.callbacks.lseek(0, file, 0n, 4 /* SEEK_HOLE */) >= 14n, true);
  assert.is(shares.callbacks.read(0, file, -1n, IOV, 1), EINVAL);
  shares.callbacks.release(0, file);
  assert.is(c.read(file, 0, 1), EBADF);
  assert.is(c.setattr(node, { size: 5 }), 0);
  assert.is(fs.readFileSync(path.join(root, 'file.txt'), 'utf8'), 'hello');
  assert.is(c.open(node, O_WRONLY | O_DIRECTORY), ENOTDIR);
  assert.is(c.open(c.walk('dir'), O_WRONLY), EISDIR);
  assert.is(c.open(node, O_RDONLY | 0o40000 /* O_DIRECT */), EINVAL);
});

test('create, mkdir, symlink and mknod give the caller uid:gid and the exact mode', () => {
  const dir = c.mkdir(ROOT, 'made', 0o750, 1234, 5678);
  assert.ok(dir > 0, `mkdir: ${dir}`);
  const f = c.create(dir, 'new.txt', 0o666, true, 1234, 5678);
  assert.ok(f > 0, `create: ${f}`);
  assert.is(readStat().mode, S_IFREG | 0o666); // not cut by the VMM's umask
  assert.is(c.create(dir, 'new.txt', 0o644, true), EEXIST);
  assert.is(c.create(dir, 'new.txt', 0o644, false) > 0, true);
  const l = c.symlink(dir, 'link', '../file.txt', 1234, 5678);
  assert.ok(l > 0, `symlink: ${l}`);
  assert.is(c.readlink(l), '../file.txt');
  const fifo = c.mknod(dir, 'fifo', S_IFIFO | 0o600);
  assert.ok(fifo > 0, `mknod: ${fifo}`);
  for (const [name, mode] of [['made', 0o750], ['made/new.txt', 0o666], ['made/fifo', 0o600]] as const) {
    const st = fs.lstatSync(path.join(root, name));
    assert.is(st.mode & 0o7777, mode, name);
  }
  for (const name of ['made', 'made/new.txt', 'made/link']) {
    const st = fs.lstatSync(path.join(root, name));
    assert.equal([st.uid, st.gid], [1234, 5678], name);
  }
  assert.is(c.create(dir, 'link', 0o644, false), ELOOP);
  assert.is(c.create(ROOT, 'made', 0o644, false), EISDIR);
});

test('link, rename, unlink, setattr, statfs, readdir and xattrs', () => {
  const dir = c.mkdir(ROOT, 'ops');
  const f = c.create(dir, 'a');
  const linked = c.link(f, dir, 'b');
  assert.ok(linked > 0, `link: ${linked}`);
  assert.is(readStat().nlink, 2);
  assert.is(c.rename(dir, 'b', dir, 'a', 1 /* NOREPLACE */), EEXIST);
  assert.is(c.rename(dir, 'b', dir, 'c'), 0);
  assert.is(c.rename(dir, 'c', ROOT, 'c', 4 /* WHITEOUT */), EINVAL);
  assert.is(c.unlink(dir, 'c'), 0);
  assert.is(c.unlink(ROOT, 'ops'), EISDIR);
  assert.is(c.setattr(f, { mode: 0o600, mtime: 12345 }), 0);
  const st = fs.statSync(path.join(root, 'ops', 'a'));
  assert.is(st.mode & 0o7777, 0o600);
  assert.is(st.mtimeMs, 12345_000);
  assert.is(c.setattr(c.walk('to-root'), { mode: 0o777 }), EOPNOTSUPP);
  assert.is(shares.callbacks.statfs(0, ROOT, BUF), 0);
  assert.ok(view().getUint32(BUF + 40, true) > 0, 'bsize');
  for (let i = 0; i < 40; i++) c.create(dir, `entry-${i}-${'x'.repeat(i)}`);
  const file = c.open(dir, O_RDONLY | O_DIRECTORY);
  // 80 bytes hold one or two entries: the cookies must carry on where the last call stopped.
  const small = c.readdir(file, 80) as [string, number][];
  const large = c.readdir(file) as [string, number][];
  assert.equal(small, large);
  const names = large.map(([n]) => n).sort();
  assert.equal(names, ['.', '..', 'a', ...fs.readdirSync(path.join(root, 'ops')).filter((n) => n !== 'a')].sort());
  assert.is(large.find(([n]) => n === 'a')?.[1], 8 /* DT_REG */);
  assert.is(c.readdir(file, 16), EINVAL);
  shares.callbacks.release(0, file);
  assert.is(c.setxattr(f, 'user.hako', 'value'), 0);
  assert.is(c.getxattr(f, 'user.hako'), 'value');
  const n = shares.callbacks.listxattr(0, f, BUF, 256);
  assert.ok(Buffer.from(memory.buffer, BUF, n).toString().includes('user.hako\0'));
  assert.is(shares.callbacks.removexattr(0, f, NAME, put(NAME, 'user.hako')), 0);
  assert.is(c.getxattr(f, 'user.hako'), ENODATA);
  assert.is(c.setxattr(f, 'trusted.hako', 'x'), EPERM);
  assert.is(c.getxattr(f, 'security.capability'), ENODATA);
  assert.is(c.getxattr(c.walk('to-canary'), 'user.x'), ENODATA);
});

// A hostile guest's attempts to reach base/canary*, each with what it must get.
test('escape table: names that are not one component', () => {
  for (const [name, expected] of [
    ['..', EINVAL], ['.', EINVAL], ['', EINVAL], ['dir/sub', EINVAL], ['../canary.txt', EINVAL],
    ['file.txt\0', EINVAL], ['x'.repeat(256), ENAMETOOLONG],
  ] as const) {
    assert.is(c.lookup(ROOT, name), expected, JSON.stringify(name));
    assert.is(c.create(ROOT, name), expected, `create ${JSON.stringify(name)}`);
    assert.is(c.mkdir(ROOT, name), expected, `mkdir ${JSON.stringify(name)}`);
    assert.is(c.unlink(ROOT, name), expected, `unlink ${JSON.stringify(name)}`);
  }
  assert.is(c.rename(ROOT, 'file.txt', ROOT, '../escaped'), EINVAL);
  assertCanariesUntouched();
});

test('escape table: symlinks are never followed', () => {
  for (const name of ['to-root', 'to-up', 'to-canary', 'chain1', 'chain2', 'magic']) {
    const node = c.lookup(ROOT, name);
    assert.ok(node > 0, `${name}: ${node}`);
    assert.is(readStat().mode & S_IFMT, S_IFLNK, name);
    assert.is(c.lookup(node, 'canary.txt'), ENOTDIR, name);
    assert.is(c.lookup(node, 'f'), ENOTDIR, name);
    assert.is(c.open(node, O_RDONLY), ENXIO, name);
    assert.is(c.open(node, O_WRONLY | O_TRUNC), ENXIO, name);
    assert.is(c.setattr(node, { size: 0 }), EINVAL, name);
    assert.is(c.setxattr(node, 'user.x', 'y'), EPERM, name);
    assert.is(c.create(ROOT, name, 0o644, false), ELOOP, name);
    const linked = c.link(node, ROOT, `${name}-hard`);
    assert.ok(linked > 0, `link ${name}: ${linked}`);
    assert.is(readStat().mode & S_IFMT, S_IFLNK, `${name}: a hard link to the symlink itself`);
    assert.is(c.unlink(ROOT, `${name}-hard`), 0);
  }
  assert.is(c.readlink(c.lookup(ROOT, 'to-canary')), CANARY);
  assertCanariesUntouched();
});

test('escape table: a directory renamed out of the share while its node is held', () => {
  fs.mkdirSync(path.join(root, 'mover'));
  const node = c.lookup(ROOT, 'mover');
  const outside = path.join(base, 'moved');
  fs.renameSync(path.join(root, 'mover'), outside);
  try {
    // Only names below the moved directory: never its new parent, where the canaries are.
    assert.is(c.lookup(node, '..'), EINVAL);
    assert.is(c.lookup(node, 'canary.txt'), ENOENT);
    assert.is(c.lookup(node, 'canary'), ENOENT);
    assert.is(c.rename(node, '..', ROOT, 'x'), EINVAL);
  } finally {
    fs.rmSync(outside, { recursive: true });
  }
  assertCanariesUntouched();
});

test('escape table: device nodes and FIFOs', () => {
  assert.is(c.mknod(ROOT, 'null', S_IFCHR | 0o666, (1 << 8) | 3), EPERM);
  assert.is(c.mknod(ROOT, 'sda', S_IFBLK | 0o600, 8 << 8), EPERM);
  assert.is(c.mknod(ROOT, 'dir2', S_IFDIR | 0o755), EINVAL);
  assert.is(fs.existsSync(path.join(root, 'null')), false);
  const whiteout = c.mknod(ROOT, 'whiteout', S_IFCHR);
  assert.ok(whiteout > 0, `whiteout: ${whiteout}`);
  assert.is(readStat().rdev, 0);
  assert.is(c.open(whiteout, O_RDONLY), ENXIO);
  fs.mkdirSync(path.join(root, 'fifos'));
  // No reader or writer exists: opening the FIFO would block forever; it is refused at once.
  const fifoPath = path.join(root, 'fifos', 'host-fifo');
  const fifo = c.mknod(c.walk('fifos'), 'host-fifo', S_IFIFO | 0o666);
  assert.ok(fifo > 0, `mkfifo: ${fifo}`);
  assert.is(fs.lstatSync(fifoPath).isFIFO(), true);
  assert.is(c.open(fifo, O_RDONLY), ENXIO);
  assert.is(c.open(fifo, O_WRONLY), ENXIO);
  assert.is(c.setattr(fifo, { size: 0 }), EINVAL);
  assert.is(c.create(c.walk('fifos'), 'host-fifo', 0o644, false), ENXIO);
  // A device node the host put in the share: the guest may look at it, never open, change or link it.
  const nullPath = path.join(root, 'fifos', 'host-null');
  const made = spawnSync('mknod', [nullPath, 'c', '1', '3']);
  assert.is(made.status, 0, `mknod (needs root): ${made.stderr}`);
  const dev = c.walk('fifos/host-null');
  assert.ok(dev > 0, `lookup: ${dev}`);
  assert.is(readStat().rdev, (1 << 8) | 3);
  assert.is(c.open(dev, O_RDONLY), ENXIO);
  assert.is(c.open(dev, O_WRONLY), ENXIO);
  assert.is(c.setattr(dev, { mode: 0o666 }), EPERM);
  assert.is(c.setattr(dev, { uid: 1000 }), EPERM);
  assert.is(c.link(dev, ROOT, 'null-again'), EPERM);
  assert.is(c.create(c.walk('fifos'), 'host-null', 0o644, false), ENXIO);
});

test('escape table: a read-only share refuses every write', () => {
  const file = ro.walk('file.txt');
  const dir = ro.walk('dir');
  assert.is(ro.create(ROOT, 'new'), EROFS);
  assert.is(ro.mkdir(ROOT, 'new'), EROFS);
  assert.is(ro.mknod(ROOT, 'new', S_IFIFO | 0o600), EROFS);
  assert.is(ro.symlink(ROOT, 'new', CANARY), EROFS);
  assert.is(ro.link(file, ROOT, 'new'), EROFS);
  assert.is(ro.unlink(ROOT, 'file.txt'), EROFS);
  assert.is(ro.unlink(ROOT, 'dir', true), EROFS);
  assert.is(ro.rename(ROOT, 'file.txt', dir, 'moved'), EROFS);
  assert.is(ro.setattr(file, { size: 0 }), EROFS);
  assert.is(ro.setattr(file, { mode: 0o777 }), EROFS);
  assert.is(ro.setattr(file, { uid: 1 }), EROFS);
  assert.is(ro.setxattr(file, 'user.x', 'y'), EROFS);
  assert.is(shares.callbacks.removexattr(1, file, NAME, put(NAME, 'user.x')), EROFS);
  for (const flags of [O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC]) assert.is(ro.open(file, flags), EROFS);
  const readable = ro.open(file, O_RDONLY);
  assert.ok(readable >= 0);
  assert.is(ro.read(readable, 0, 100), 'read only');
  assert.is(ro.write(readable, 0, 'changed'), EROFS);
  assert.is(shares.callbacks.fallocate(1, readable, 0, 0n, 4096n), EROFS);
  assert.is(ro.setattr(file, { size: 0 }, readable), EROFS);
  shares.callbacks.release(1, readable);
  assert.is(fs.readFileSync(path.join(roRoot, 'file.txt'), 'utf8'), 'read only');
  assert.equal(fs.readdirSync(roRoot).sort(), ['dir', 'file.txt']);
  // Handles of one share mean nothing in another (share 0 has handed out far more nodes).
  assert.is(ro.getattr(c.walk('dir/sub/deep')), EBADF);
});

test('bad handles, pointers and vectors are errors, not exceptions', () => {
  const cb = shares.callbacks;
  assert.is(cb.getattr(7, ROOT, STAT), ENODEV); // no share 7 in this VM
  assert.is(cb.getattr(0, 0x7fff_fff0, STAT), EBADF);
  assert.is(cb.open(0, 123456, O_RDONLY), EBADF);
  assert.is(cb.read(0, 999, 0n, IOV, 1), EBADF);
  assert.is(cb.getattr(0, ROOT, memory.buffer.byteLength - 95), EFAULT);
  assert.is(cb.lookup(0, ROOT, memory.buffer.byteLength - 2, 8, STAT), EFAULT);
  const file = c.open(c.walk('dir/sub/deep'), O_RDONLY);
  const v = view();
  v.setBigUint64(IOV, BigInt(memory.buffer.byteLength - 2), true);
  v.setBigUint64(IOV + 8, 4n, true);
  assert.is(cb.read(0, file, 0n, IOV, 1), EFAULT);
  v.setBigUint64(IOV, 0xffff_ffff_ffff_fff0n, true);
  v.setBigUint64(IOV + 8, 0x20n, true);
  assert.is(cb.read(0, file, 0n, IOV, 1), EFAULT);
  assert.is(cb.read(0, file, 0n, IOV, 1025), EINVAL);
  assert.is(cb.read(0, file, 0n, memory.buffer.byteLength - 8, 1), EFAULT);
  assert.is(cb.read(0, file, 0n, IOV, 0), 0);
  // Node 0 is the root for good: forgetting it changes nothing.
  cb.forget(0, ROOT);
  assert.ok(typeof c.getattr(ROOT) === 'object');
  cb.release(0, file);
});

test('closing the shares closes every fd they held', () => {
  const local = new FsShares(addon, () => memory.buffer);
  const before = openFds();
  local.open(0, root, false);
  const client = new Client(local.callbacks, 0);
  for (let i = 0; i < 20; i++) {
    const node = client.walk('dir/sub/deep');
    assert.ok(client.open(node, O_RDONLY) >= 0);
  }
  assert.ok(openFds() > before + 40);
  local.close();
  assert.is(openFds(), before);
  local.close(); // idempotent
  assert.throws(() => addon.fsShareClose(123456), /EBADF/);
  assert.throws(() => addon.fsShareOpen(path.join(base, 'missing'), false), /ENOENT/);
  assert.throws(() => addon.fsShareOpen(path.join(root, 'file.txt'), false), /ENOTDIR/);
  assert.throws(() => local.open(0, path.join(base, 'missing'), false), /cannot share directory/);
});

test('--share DIR[:ro] and share configs are checked before any VM work', () => {
  assert.equal(parseShareOption('/srv/data:ro'), { path: '/srv/data', tag: 'hako-shared', readOnly: true, cache: 'auto' });
  assert.equal(parseShareOption('rel:rw'), { path: path.resolve('rel'), tag: 'hako-shared', readOnly: false, cache: 'auto' });
  assert.is(parseShareOption('/a:b').path, '/a:b');
  assert.throws(() => parseShareOption(':ro'), /non-empty DIR/);
  assert.throws(() => validateShares([{ path: '/a', tag: 'x'.repeat(37) }]), /1 to 36 bytes/);
  assert.throws(() => validateShares([{ path: '/a', tag: '' }]), /1 to 36 bytes/);
  assert.throws(() => validateShares([{ path: '/a', tag: 't' }, { path: '/b', tag: 't' }]), /used twice/);
  assert.throws(() => validateShares([{ path: '', tag: 't' }]), /non-empty path/);
  assert.throws(() => validateShares([{ path: '/a', tag: 't', cache: 'sometimes' as 'auto' }]), /cache must be one of/);
  const devices = virtioDevices({
    kernel: 'k', cmdline: '', vcpus: 1, memoryMiB: 256, cpuTemplate: 'host', shares: [{ path: '/a', tag: 't' }],
  });
  assert.equal(devices.at(-1), { kind: 'fs', path: '/a', tag: 't', readOnly: false, cache: 'auto' });
});

test.run();
