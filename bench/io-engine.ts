// Micro-benchmark of the native I/O engine alone (no VM): 4 KiB random reads
// from a page-cached file into a Wasm memory, through IoEngine (io_uring) and
// through Node's fs.read (libuv's thread pool, the alternative to io_uring)
// and fs.readSync, at queue depth 1 and 32: why block I/O runs on io_uring.
//   npm run bench -- io
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../host/native.js';

const FILE_BYTES = 64 * 1024 * 1024;
const BLOCK = 4096;
const READS = 20000;
const GUEST_BYTES = 8 * 1024 * 1024;
const RECORDS = 12 * 1024 * 1024;
const IOVECS = 14 * 1024 * 1024;

const blocks = FILE_BYTES / BLOCK;
const randomBlock = () => Math.floor(Math.random() * blocks);
const slot = (i: number) => (i % (GUEST_BYTES / BLOCK)) * BLOCK;

async function engineReads(fd: number, memory: WebAssembly.Memory, depth: number, reads: number): Promise<number> {
  const view = new DataView(memory.buffer);
  let issued = 0;
  let completed = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => { finish = resolve; });
  const submit = (count: number) => {
    for (let k = 0; k < count; k++) {
      const i = issued + k;
      const p = RECORDS + (i % 1024) * 32;
      const q = IOVECS + (i % 1024) * 16;
      view.setUint32(p, i, true);
      view.setUint32(p + 4, 0, true);  // op READ, flags 0, file 0
      view.setBigUint64(p + 8, BigInt(randomBlock() * BLOCK), true);
      view.setBigUint64(p + 16, BigInt(BLOCK), true);
      view.setUint32(p + 24, q, true);
      view.setUint32(p + 28, 1, true);
      view.setBigUint64(q, BigInt(slot(i)), true);
      view.setBigUint64(q + 8, BigInt(BLOCK), true);
    }
    engine.submit(RECORDS + (issued % 1024) * 32, count);
    issued += count;
  };
  const engine = new (native().IoEngine)(memory, GUEST_BYTES, (ids) => {
    completed += ids.length;
    if (completed === reads) return finish();
    // Refill to `depth`, without wrapping the record ring in one batch.
    const room = Math.min(ids.length, reads - issued, 1024 - (issued % 1024));
    if (room > 0) submit(room);
  });
  engine.attach(fd);
  const start = process.hrtime.bigint();
  submit(depth);
  await done;
  const ns = Number(process.hrtime.bigint() - start);
  engine.close();
  return ns;
}

async function threadPoolReads(fd: number, memory: WebAssembly.Memory, depth: number, reads: number): Promise<number> {
  const ram = new Uint8Array(memory.buffer);
  let issued = 0;
  const start = process.hrtime.bigint();
  const worker = async () => {
    while (issued < reads) {
      const i = issued++;
      await new Promise<void>((resolve, reject) =>
        fs.read(fd, ram, slot(i), BLOCK, randomBlock() * BLOCK, (err) => (err ? reject(err) : resolve())));
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  return Number(process.hrtime.bigint() - start);
}

function syncReads(fd: number, memory: WebAssembly.Memory, reads: number): number {
  const ram = new Uint8Array(memory.buffer);
  const start = process.hrtime.bigint();
  for (let i = 0; i < reads; i++) fs.readSync(fd, ram, slot(i), BLOCK, randomBlock() * BLOCK);
  return Number(process.hrtime.bigint() - start);
}

export interface IoEngineRow {
  method: string;
  depth: number;
  usPerRead: number;
}

export interface IoEngineResult {
  name: 'io';
  reads: number;
  rows: IoEngineRow[];
}

export async function benchIoEngine(opts: { quick: boolean; log: (line: string) => void }): Promise<IoEngineResult> {
  const reads = opts.quick ? READS / 4 : READS;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-io-bench-'));
  const file = path.join(dir, 'disk');
  fs.writeFileSync(file, Buffer.alloc(FILE_BYTES, 1));
  const fd = fs.openSync(file, 'r');
  const memory = new WebAssembly.Memory({ initial: 256 });
  const rows: IoEngineRow[] = [];
  const add = (method: string, depth: number, ns: number) => {
    rows.push({ method, depth, usPerRead: ns / reads / 1000 });
    opts.log(`io: ${method}, queue depth ${depth}: ${(ns / reads / 1000).toFixed(2)} us per 4 KiB read`);
  };
  try {
    syncReads(fd, memory, reads); // warm the page cache and the JIT
    for (const depth of [1, 32]) {
      add('IoEngine (io_uring)', depth, await engineReads(fd, memory, depth, reads));
      add('fs.read (libuv thread pool)', depth, await threadPoolReads(fd, memory, depth, reads));
    }
    add('fs.readSync (blocks the JS thread)', 1, syncReads(fd, memory, reads));
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { name: 'io', reads, rows };
}

export function reportIoEngine(r: IoEngineResult): string {
  return [
    `### io (no VM: ${r.reads} random 4 KiB reads of a page-cached file into a Wasm memory)`,
    '| method | queue depth | us per read |',
    '| --- | --- | --- |',
    ...r.rows.map((x) => `| ${x.method} | ${x.depth} | ${x.usPerRead.toFixed(2)} |`),
  ].join('\n');
}
