// The native I/O engine (io_uring) without KVM: a WebAssembly.Memory stands in
// for guest RAM, records are packed by hand as the virtio-blk model would, and
// a temp file is the disk image. Also getRandom.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isKvmError, native, repoRoot, type IoEngine, type IoEngineOptions } from '../../host/native.js';

const addon = native();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-native-io-'));

const MIB = 1024 * 1024;
const GUEST_BYTES = 8 * MIB;      // "guest RAM": [0, 8 MiB) of a 16 MiB memory
const RECORDS = 12 * MIB;         // records and I/O vectors live above guest RAM, like the device models' heap
const IOVECS = RECORDS + 64 * 1024;
const FILE_BYTES = MIB;

// assembly/virtio/io.ts
const Op = { READ: 0, WRITE: 1, FLUSH: 2, DISCARD: 3, WRITE_ZEROES: 4 } as const;
const MAY_UNMAP = 1;
const EIO = -5, EINVAL = -22, EOPNOTSUPP = -95;

interface Rec {
  id: number;
  op: number;
  flags?: number;
  file?: number;
  offset: number;
  length: number;
  iov?: [gpa: number, len: number][];
}

/** Writes `recs` (and their I/O vectors) into memory as 32-byte records; returns the records' address. */
function pack(memory: WebAssembly.Memory, recs: Rec[], at = RECORDS): number {
  const view = new DataView(memory.buffer);
  let iovAt = IOVECS + (at - RECORDS);
  recs.forEach((r, i) => {
    const p = at + i * 32;
    view.setUint32(p, r.id, true);
    view.setUint8(p + 4, r.op);
    view.setUint8(p + 5, r.flags ?? 0);
    view.setUint16(p + 6, r.file ?? 0, true);
    view.setBigUint64(p + 8, BigInt(r.offset), true);
    view.setBigUint64(p + 16, BigInt(r.length), true);
    const iov = r.iov ?? [];
    view.setUint32(p + 24, iovAt, true);
    view.setUint32(p + 28, iov.length, true);
    for (const [gpa, len] of iov) {
      view.setBigUint64(iovAt, BigInt(gpa), true);
      view.setBigUint64(iovAt + 8, BigInt(len), true);
      iovAt += 16;
    }
  });
  return at;
}

/** An engine on a fresh 16 MiB memory and temp file, collecting results by id. */
function setup(options?: IoEngineOptions, fileBytes = FILE_BYTES) {
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 1024 });
  const file = path.join(dir, `disk-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, Uint8Array.from({ length: fileBytes }, (_, i) => (i * 13) % 251));
  const fd = fs.openSync(file, 'r+');
  const results = new Map<number, number>();
  const calls: number[] = [];  // batch sizes of onComplete calls
  const hooks: { afterBatch?: () => void } = {};
  let waiting: { ids: number[]; resolve: () => void } | undefined;
  const engine: IoEngine = new addon.IoEngine(memory, GUEST_BYTES, (ids, res) => {
    assert.is(ids.length, res.length);
    calls.push(ids.length);
    ids.forEach((id, i) => results.set(id, res[i]!));
    hooks.afterBatch?.();
    if (waiting && waiting.ids.every((id) => results.has(id))) waiting.resolve();
  }, options);
  const index = engine.attach(fd);
  const ram = new Uint8Array(memory.buffer);
  /** Submits `recs` and resolves with their results, in order. */
  const run = async (recs: Rec[]): Promise<number[]> => {
    const ids = recs.map((r) => r.id);
    ids.forEach((id) => results.delete(id));
    engine.submit(pack(memory, recs), recs.length);
    if (!ids.every((id) => results.has(id))) await new Promise<void>((resolve) => { waiting = { ids, resolve }; });
    return ids.map((id) => results.get(id)!);
  };
  const done = () => {
    engine.close();
    fs.closeSync(fd);
    fs.rmSync(file);
  };
  return { memory, ram, file, fd, index, engine, results, calls, hooks, run, done };
}

test('a write lands in the file, a read brings it back into guest RAM, a flush succeeds', async () => {
  const t = setup();
  assert.is(t.index, 0);
  const data = Uint8Array.from({ length: 12288 }, (_, i) => (i * 7 + 3) & 0xff);
  // Three uneven pieces at scattered guest addresses.
  t.ram.set(data.subarray(0, 1000), 0x10000);
  t.ram.set(data.subarray(1000, 5096), 0x30000);
  t.ram.set(data.subarray(5096), 0x7ff000 - (12288 - 5096));
  const iov: [number, number][] = [[0x10000, 1000], [0x30000, 4096], [0x7ff000 - 7192, 7192]];
  assert.equal(await t.run([{ id: 1, op: Op.WRITE, offset: 4096, length: 12288, iov }]), [12288]);
  assert.ok(fs.readFileSync(t.file).subarray(4096, 4096 + 12288).equals(data), 'the file holds the written bytes');

  assert.equal(await t.run([{ id: 2, op: Op.READ, offset: 4096, length: 12288, iov: [[0x200000, 5000], [0x400000, 7288]] }]),
    [12288]);
  assert.ok(Buffer.from(t.ram.subarray(0x200000, 0x200000 + 5000)).equals(data.subarray(0, 5000)));
  assert.ok(Buffer.from(t.ram.subarray(0x400000, 0x400000 + 7288)).equals(data.subarray(5000)));
  assert.equal(await t.run([{ id: 3, op: Op.FLUSH, offset: 0, length: 0 }]), [0]);
  assert.is(t.engine.inFlight(), 0);
  t.done();
});

test('a read past the end of the file completes with -EIO, one within it with its length', async () => {
  const t = setup();
  assert.equal(await t.run([
    { id: 1, op: Op.READ, offset: FILE_BYTES - 4096, length: 8192, iov: [[0, 8192]] },
    { id: 2, op: Op.READ, offset: FILE_BYTES - 4096, length: 4096, iov: [[0x1000, 4096]] },
    { id: 3, op: Op.READ, offset: FILE_BYTES, length: 512, iov: [[0x2000, 512]] },
  ]), [EIO, 4096, EIO]);
  t.done();
});

test('discard and write-zeroes zero the range or report EOPNOTSUPP', async () => {
  const t = setup();
  const cases: Rec[] = [
    { id: 1, op: Op.DISCARD, offset: 0, length: 65536 },
    { id: 2, op: Op.WRITE_ZEROES, offset: 65536, length: 65536 },
    { id: 3, op: Op.WRITE_ZEROES, flags: MAY_UNMAP, offset: 131072, length: 65536 },
  ];
  const results = await t.run(cases);
  const contents = fs.readFileSync(t.file);
  results.forEach((result, i) => {
    assert.ok(result === 0 || result === EOPNOTSUPP, `record ${i + 1}: ${result}`);
    if (result === 0) {
      assert.ok(contents.subarray(i * 65536, (i + 1) * 65536).every((b) => b === 0), `range ${i + 1} reads as zeroes`);
    }
  });
  assert.is(contents.length, FILE_BYTES, 'the file keeps its size');
  assert.is(contents[196608], (196608 * 13) % 251, 'bytes past the ranges are untouched');
  t.done();
});

test('bad records complete with -EINVAL, after submit() returned, next to good ones', async () => {
  const t = setup();
  const ok: Rec = { id: 100, op: Op.READ, offset: 0, length: 4096, iov: [[0, 4096]] };
  const bad: Rec[] = [
    { id: 1, op: Op.READ, offset: 0, length: 4096, iov: [[GUEST_BYTES - 2048, 4096]] },  // crosses the end of guest RAM
    { id: 2, op: Op.READ, offset: 0, length: 4096, iov: [[2 ** 64 - 2048, 4096]] },      // wraps around
    { id: 3, op: Op.WRITE, offset: 0, length: 4096, iov: [[RECORDS, 4096]] },             // inside the memory, outside guest RAM
    { id: 4, op: 9, offset: 0, length: 0 },                                               // unknown op
    { id: 5, op: Op.READ, file: 1, offset: 0, length: 4096, iov: [[0, 4096]] },          // no such file
    { id: 6, op: Op.READ, offset: 0, length: 4096, iov: [[0, 2048]] },                    // vectors short of the length
    { id: 7, op: Op.WRITE, offset: 0, length: 2048, iov: [[0, 2048], [4096, 2048]] },     // vectors past the length
    { id: 8, op: Op.READ, offset: 2 ** 63, length: 512, iov: [[0, 512]] },                // offset past off_t
    { id: 9, op: Op.READ, offset: 0, length: 2 ** 31, iov: [[0, 2 ** 31]] },              // beyond an i32 result (and guest RAM)
    { id: 10, op: Op.FLUSH, flags: 0x80, offset: 0, length: 0 },                          // unknown flag
    { id: 11, op: Op.READ, offset: 0, length: 1025, iov: Array.from({ length: 1025 }, (_, i) => [i, 1] as [number, number]) },
  ];
  const before = t.calls.length;
  const pending = t.run([...bad, ok]);
  assert.is(t.calls.length, before, 'nothing is delivered from inside submit()');
  assert.is(t.engine.inFlight(), bad.length + 1);
  assert.equal(await pending, [...bad.map(() => EINVAL), 4096]);
  // I/O vectors outside the memory altogether.
  const view = new DataView(t.memory.buffer);
  pack(t.memory, [{ id: 12, op: Op.READ, offset: 0, length: 0 }]);
  view.setUint32(RECORDS + 24, 16 * MIB - 8, true);
  view.setUint32(RECORDS + 28, 1, true);
  view.setBigUint64(RECORDS + 16, 1n, true);
  t.results.delete(12);
  t.engine.submit(RECORDS, 1);
  t.engine.drain();
  assert.is(t.results.get(12), EINVAL);
  assert.is(t.engine.inFlight(), 0);
  t.done();
});

test('a record array outside the memory is a RangeError; submit after close an EBADF', () => {
  const t = setup();
  assert.throws(() => t.engine.submit(16 * MIB - 16, 1), (e: unknown) => e instanceof RangeError && /outside the memory/.test(e.message));
  assert.throws(() => t.engine.submit(0, 2 ** 32 - 1), RangeError);
  t.done();
  t.engine.close();  // idempotent
  assert.throws(() => t.engine.submit(RECORDS, 0), (e: unknown) => isKvmError(e) && e.code === 'EBADF');
});

test('more requests than the ring holds all complete, batched', async () => {
  const t = setup({ entries: 4 });
  const recs: Rec[] = Array.from({ length: 200 }, (_, i) => ({
    id: 1000 + i, op: Op.READ, offset: (i * 4096) % FILE_BYTES, length: 4096, iov: [[i * 4096, 4096]],
  }));
  assert.ok((await t.run(recs)).every((r) => r === 4096));
  for (const i of [0, 57, 199]) {
    const expected = Uint8Array.from({ length: 4096 }, (_, j) => ((((i * 4096) % FILE_BYTES) + j) * 13) % 251);
    assert.ok(Buffer.from(t.ram.subarray(i * 4096, (i + 1) * 4096)).equals(expected), `request ${i} read its bytes`);
  }
  assert.ok(t.calls.length < 200, `results come in batches (${t.calls.length} calls)`);
  t.done();
});

test('drain() delivers every result before it returns, including requests onComplete submits', () => {
  const t = setup({ entries: 2 });
  const engine = t.engine;
  const recs: Rec[] = Array.from({ length: 20 }, (_, i) => ({ id: i, op: Op.WRITE, offset: i * 512, length: 512, iov: [[0, 512]] }));
  engine.submit(pack(t.memory, recs), recs.length);
  // The first delivery submits one more request, as a device taking its next request would.
  t.hooks.afterBatch = () => {
    t.hooks.afterBatch = undefined;
    engine.submit(pack(t.memory, [{ id: 99, op: Op.FLUSH, offset: 0, length: 0 }], RECORDS + 4096), 1);
  };
  engine.drain();
  assert.is(engine.inFlight(), 0);
  assert.is(t.results.size, 21);
  assert.ok(recs.every((r) => t.results.get(r.id) === 512));
  assert.is(t.results.get(99), 0);
  t.done();
});

test('close() with requests in flight waits for them and delivers their results', () => {
  const t = setup({ entries: 8 });
  const recs: Rec[] = Array.from({ length: 64 }, (_, i) => ({ id: i, op: Op.READ, offset: i * 4096, length: 4096, iov: [[i * 4096, 4096]] }));
  t.engine.submit(pack(t.memory, recs), recs.length);
  assert.ok(t.engine.inFlight() > 0);
  t.done();
  assert.is(t.results.size, 64);
  assert.is(t.engine.inFlight(), 0);
});

test('close() from inside onComplete is safe', async () => {
  const memory = new WebAssembly.Memory({ initial: 256 });
  const file = path.join(dir, 'close-inside');
  fs.writeFileSync(file, new Uint8Array(65536));
  const fd = fs.openSync(file, 'r');
  let seen = 0;
  await new Promise<void>((resolve) => {
    const engine = new addon.IoEngine(memory, GUEST_BYTES, (ids) => {
      seen += ids.length;
      engine.close();
      resolve();
    });
    engine.attach(fd);
    const recs: Rec[] = Array.from({ length: 8 }, (_, i) => ({ id: i, op: Op.READ, offset: 0, length: 4096, iov: [[0, 4096]] }));
    engine.submit(pack(memory, recs), recs.length);
  });
  assert.is(seen, 8, 'close() inside onComplete still delivers what was in flight');
  fs.closeSync(fd);
});

test('with the WebAssembly.Memory, records in memory grown after construction are reachable', () => {
  const t = setup();
  t.memory.grow(256);
  t.ram = new Uint8Array(t.memory.buffer);
  const at = 20 * MIB;
  const view = new DataView(t.memory.buffer);
  pack(t.memory, [{ id: 5, op: Op.READ, offset: 0, length: 4096, iov: [[0, 4096]] }], at);
  // pack put the vector above IOVECS + (at - RECORDS): still in the grown memory.
  assert.ok(view.getUint32(at + 24, true) < 32 * MIB);
  t.engine.submit(at, 1);
  t.engine.drain();
  assert.is(t.results.get(5), 4096);
  t.done();
});

test('an ArrayBuffer works as the memory too; bad constructor arguments are named', () => {
  const memory = new WebAssembly.Memory({ initial: 256 });
  const engine = new addon.IoEngine(memory.buffer, GUEST_BYTES, () => {});
  engine.close();
  assert.throws(() => new addon.IoEngine(memory.buffer, 32 * MIB, () => {}), /guestBytes 0x2000000 is larger/);
  assert.throws(() => new addon.IoEngine({} as ArrayBuffer, 0, () => {}), /memory must be a WebAssembly.Memory or an ArrayBuffer/);
  assert.throws(() => new addon.IoEngine(memory, 0, () => {}, { entries: 0 }), /options.entries/);
  const other = new addon.IoEngine(memory, 0, () => {});
  assert.throws(() => other.attach(1 << 30), (e: unknown) => isKvmError(e) && e.code === 'EBADF', 'a closed fd');
  other.close();
});

test('pending I/O keeps the process alive until it completes; an idle engine does not', () => {
  const file = path.join(dir, 'child');
  fs.writeFileSync(file, new Uint8Array(MIB));
  const script = `
    const { native } = await import(${JSON.stringify(path.join(repoRoot, 'dist', 'host', 'native.js'))});
    const fs = await import('node:fs');
    const memory = new WebAssembly.Memory({ initial: 256 });
    const idle = new (native().IoEngine)(memory, ${GUEST_BYTES}, () => {});
    const engine = new (native().IoEngine)(memory, ${GUEST_BYTES}, (ids, results) => console.log('done', ids.length, results[0]));
    engine.attach(fs.openSync(${JSON.stringify(file)}, 'r'));
    const v = new DataView(memory.buffer);
    for (let i = 0; i < 16; i++) {
      const p = ${RECORDS} + i * 32;
      v.setUint32(p, i, true); v.setUint8(p + 4, 0); v.setBigUint64(p + 8, BigInt(i * 4096), true);
      v.setBigUint64(p + 16, 4096n, true); v.setUint32(p + 24, ${IOVECS} + i * 16, true); v.setUint32(p + 28, 1, true);
      v.setBigUint64(${IOVECS} + i * 16, BigInt(i * 4096), true); v.setBigUint64(${IOVECS} + i * 16 + 8, 4096n, true);
    }
    engine.submit(${RECORDS}, 16);
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.is(child.status, 0, child.stderr);
  const total = child.stdout.trim().split('\n').map((line) => Number(line.split(' ')[1])).reduce((a, b) => a + b, 0);
  assert.is(total, 16, `every result was delivered before exit: ${child.stdout}`);
});

test('watchFd names a bad fd like other syscall errors', () => {
  assert.throws(() => addon.watchFd(1 << 30, () => {}), (e: unknown) => isKvmError(e) && e.code === 'EBADF' && e.syscall === 'uv_poll_init');
  assert.throws(() => addon.watchFd(-1, () => {}), TypeError);
});

test('getRandom fills the range, differs between calls, and checks bounds', () => {
  const buffer = new ArrayBuffer(4096);
  const bytes = new Uint8Array(buffer);
  addon.getRandom(buffer, 1024, 1024);
  assert.ok(bytes.subarray(0, 1024).every((b) => b === 0) && bytes.subarray(2048).every((b) => b === 0), 'only the range');
  const first = Buffer.from(bytes.subarray(1024, 2048));
  assert.ok(first.some((b) => b !== 0));
  addon.getRandom(buffer, 1024, 1024);
  assert.not.ok(first.equals(bytes.subarray(1024, 2048)), 'a second call gives other bytes');
  addon.getRandom(buffer, 4096, 0);
  assert.throws(() => addon.getRandom(buffer, 4000, 97), RangeError);
  assert.throws(() => addon.getRandom(buffer, 4097, 0), RangeError);
  const big = new ArrayBuffer(4 * MIB);  // several getrandom calls' worth
  addon.getRandom(big, 0, big.byteLength);
  assert.ok(new Uint8Array(big, big.byteLength - 64).some((b) => b !== 0));
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
