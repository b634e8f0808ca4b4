// `npm run bench -- virtio`: the cost of the Wasm virtio devices' descriptor-
// chain processing, per request, on the real device module with no-op host
// callbacks (no disk, no random bytes, no irqfd): what a kick and its
// completions cost the VMM thread. Each iteration re-publishes a batch of
// chains that were built once, so the driver side costs two stores. Also the
// Wasm page hash (assembly/page_hash.ts) over guest RAM, per 4 KiB page.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { loadDevices, type DeviceCallbacks, type Devices } from '../host/wasm/devices.js';
import {
  addChain, FEATURE, kick, publish, queueLayout, REG, setupDevice, setUsedEvent, STATUS, usedIdx,
  VIRTIO_BASE, VIRTIO_GSI, type DeviceHost, type Queue, type Segment, type VirtioTestDevice,
} from '../test/unit/virtio-rings.js';
import { HASH_PAGES_REFUSED, loadPageHash } from '../test/unit/page-hash-module.js';
import { formatSummary, summarize, type Summary } from './stats.js';

/** Chains per kick; divides QUEUE_SIZE so every avail slot always holds the same head (see `republish`). */
const BATCH = 64;
const QUEUE_SIZE = 256;
const RAM_BYTES = 16 << 20;
const RING = 0x1_0000;
const HEADERS = 0x2_0000;
const STATUSES = 0x3_0000;
const TABLES = 0x4_0000;
const DATA = 0x10_0000;
const PAGE = 4096;
const RNG_BYTES = 64;
/** virtio-blk request type IN (a read), spec 5.2.6. */
const VIRTIO_BLK_T_IN = 0;
const DISK_SECTORS = 1n << 20n;
const DISK_FILE = 0;
const BLOCK_RECORD_SIZE = 32;
/** 4 MiB per hashPages call: more than L2, like a snapshot's pass over RAM. */
const HASH_PAGES = 1024;

/** The part of benchmark.js this file uses (the package ships no types). */
interface Benchmark {
  run(): void;
  on(event: 'cycle', listener: () => void): void;
  error?: Error;
  /** Per cycle: seconds per call of fn. */
  stats: { sample: number[] };
}
type BenchmarkConstructor = new (name: string, fn: () => void, options: { maxTime: number; minSamples: number }) => Benchmark;
const Benchmark = createRequire(import.meta.url)('benchmark') as BenchmarkConstructor;

export interface VirtioRow {
  what: string;
  /** Nanoseconds per request (per chain for rng), one sample per benchmark.js cycle. */
  perRequestNs: Summary;
  /** virtio-blk only: the kick that pops the batch and submits its records, and the completions that return it. */
  submitNs?: Summary;
  completeNs?: Summary;
}

export interface VirtioResult {
  name: 'virtio';
  batch: number;
  rows: VirtioRow[];
  /** hashPages over `pages` pages of non-zero data per call (absent in results from before it existed). */
  pageHash?: { pages: number; perPageNs: Summary };
}

/** A module with no-op callbacks that count what the devices hand the host. */
interface Host extends DeviceHost {
  /** Record ids of the last ioSubmit batches not yet completed. */
  ids: Uint32Array;
  submitted: number;
  fills: number;
  pulses: number;
}

async function createHost(): Promise<Host> {
  const host = { ids: new Uint32Array(QUEUE_SIZE), submitted: 0, fills: 0, pulses: 0 } as Host;
  const noop = () => {};
  const callbacks: DeviceCallbacks = {
    irqLine: noop,
    consoleWrite: noop,
    resetRequest: noop,
    guestExit: noop,
    wallClockSeconds: () => 0,
    irqPulse: () => void host.pulses++,
    fillRandom: () => void host.fills++,
    ioSubmit(records, count) {
      // The one thing a real host must do before returning: take the ids it completes later.
      const m = new DataView(host.devices.memory.buffer);
      for (let i = 0; i < count; i++) host.ids[host.submitted++] = m.getUint32(records + BLOCK_RECORD_SIZE * i, true);
    },
  };
  host.devices = await loadDevices(callbacks);
  host.devices.setGuestRamBytes(RAM_BYTES);
  return host;
}

/**
 * Makes the next BATCH chains available again, with a used_event asking for
 * one interrupt when they are all used (as a driver waiting for the batch).
 * The chains and the avail slots from the first QUEUE_SIZE / BATCH batches
 * are reused: only used_event and avail.idx change.
 */
function republish(q: Queue<DeviceHost>): void {
  setUsedEvent(q, q.availIdx);
  q.availIdx = (q.availIdx + BATCH) & 0xffff;
  publish(q, []);
}

/** Fails loudly if the device stopped serving (NEEDS_RESET) or the rings disagree with what was published. */
function checkHealthy(what: string, devices: Devices, dev: VirtioTestDevice<DeviceHost>, q: Queue<DeviceHost>): void {
  const failure = devices.virtioFailure(0);
  const status = dev.read(REG.STATUS);
  if (failure !== 0 || status & STATUS.NEEDS_RESET) {
    throw new Error(`virtio bench ${what}: the device failed (virtioFailure ${failure}, status 0x${status.toString(16)})`);
  }
  if (usedIdx(q) !== q.availIdx) {
    throw new Error(`virtio bench ${what}: used.idx ${usedIdx(q)}, expected every published chain (${q.availIdx}) used`);
  }
}

/**
 * Runs `round` (one batch) under benchmark.js after warm-up rounds that also
 * fill every avail slot. Returns ns per chain of each cycle and, through
 * `onCycle`, lets the caller sample its own counters at the same cycles.
 */
function measure(what: string, q: Queue<DeviceHost>, heads: number[], round: () => void, quick: boolean, onCycle = () => {}): number[] {
  for (let i = 0; i < QUEUE_SIZE / BATCH; i++) {
    setUsedEvent(q, q.availIdx);
    publish(q, heads);
    round();
  }
  for (let i = 0; i < 200; i++) {
    republish(q);
    round();
  }
  const bench = new Benchmark(what, () => {
    republish(q);
    round();
  }, { maxTime: quick ? 0.5 : 3, minSamples: quick ? 5 : 20 });
  bench.on('cycle', onCycle);
  bench.run();
  if (bench.error) throw new Error(`virtio bench ${what}: ${bench.error.message}`);
  return bench.stats.sample.map((seconds) => (seconds * 1e9) / BATCH);
}

/** virtio-blk: BATCH 4 KiB reads (header, data, status), direct or through one indirect table each. */
async function benchBlock(indirect: boolean, quick: boolean): Promise<VirtioRow> {
  const what = `virtio-blk 4 KiB read, ${indirect ? 'indirect' : 'direct'} descriptors`;
  const host = await createHost();
  const { devices } = host;
  devices.addVirtioBlock(VIRTIO_BASE, VIRTIO_GSI, DISK_FILE, DISK_SECTORS, false);
  const dev = setupDevice(host, VIRTIO_BASE, [queueLayout(RING, QUEUE_SIZE)], FEATURE.INDIRECT_DESC | FEATURE.EVENT_IDX);
  const q = dev.queues[0]!;
  const m = new DataView(devices.memory.buffer);
  const heads: number[] = [];
  for (let i = 0; i < BATCH; i++) {
    const header = HEADERS + 16 * i;
    m.setUint32(header, VIRTIO_BLK_T_IN, true);
    m.setBigUint64(header + 8, BigInt(i * (PAGE / 512)), true);
    const segments: Segment[] = [
      { addr: header, len: 16, write: false },
      { addr: DATA + PAGE * i, len: PAGE, write: true },
      { addr: STATUSES + i, len: 1, write: true },
    ];
    heads.push(addChain(q, segments, indirect ? { indirect: TABLES + 16 * segments.length * i } : {}));
  }
  // addChain published the first batch; measure() publishes from the start.
  q.availIdx = 0;
  publish(q, []);

  let submitMs = 0, completeMs = 0, rounds = 0;
  const submitNs: number[] = [], completeNs: number[] = [];
  const round = () => {
    const t0 = performance.now();
    host.submitted = 0;
    kick(q, 'ioeventfd', 0);
    const t1 = performance.now();
    if (host.submitted !== BATCH) throw new Error(`a kick submitted ${host.submitted} records, expected ${BATCH}`);
    for (let i = 0; i < BATCH; i++) devices.ioComplete(host.ids[i]!, PAGE);
    devices.ioCompleteEnd();
    const t2 = performance.now();
    submitMs += t1 - t0;
    completeMs += t2 - t1;
    rounds++;
  };
  const perRound = (ms: number) => (ms * 1e6) / (rounds * BATCH);
  const onCycle = () => {
    submitNs.push(perRound(submitMs));
    completeNs.push(perRound(completeMs));
    submitMs = completeMs = rounds = 0;
  };
  const pulsesBefore = host.pulses;
  const perRequestNs = measure(what, q, heads, round, quick, onCycle);
  checkHealthy(what, devices, dev, q);
  if (devices.ioInFlight() !== 0) throw new Error(`virtio bench ${what}: ${devices.ioInFlight()} records still in flight`);
  if (host.pulses === pulsesBefore) throw new Error(`virtio bench ${what}: no interrupt raised`);
  // The first cycles calibrate benchmark.js's loop count and are not in its sample: drop them here too.
  const sampled = (xs: number[]) => summarize(xs.slice(-perRequestNs.length));
  return { what, perRequestNs: summarize(perRequestNs), submitNs: sampled(submitNs), completeNs: sampled(completeNs) };
}

/** virtio-rng: BATCH chains of one 64-byte device-writable buffer each. */
async function benchRng(quick: boolean): Promise<VirtioRow> {
  const what = `virtio-rng ${RNG_BYTES}-byte buffer`;
  const host = await createHost();
  host.devices.addVirtioRng(VIRTIO_BASE, VIRTIO_GSI);
  const dev = setupDevice(host, VIRTIO_BASE, [queueLayout(RING, QUEUE_SIZE)], FEATURE.EVENT_IDX);
  const q = dev.queues[0]!;
  const heads: number[] = [];
  for (let i = 0; i < BATCH; i++) heads.push(addChain(q, [{ addr: DATA + RNG_BYTES * i, len: RNG_BYTES, write: true }]));
  q.availIdx = 0;
  publish(q, []);
  const round = () => {
    const before = host.fills;
    kick(q, 'ioeventfd', 0);
    if (host.fills - before !== BATCH) throw new Error(`a kick filled ${host.fills - before} buffers, expected ${BATCH}`);
  };
  const perRequestNs = measure(what, q, heads, round, quick);
  checkHealthy(what, host.devices, dev, q);
  return { what, perRequestNs: summarize(perRequestNs) };
}

/** hashPages over HASH_PAGES pages of pseudo-random bytes (none zero, so no early exit could flatter it). */
async function benchPageHash(quick: boolean): Promise<Summary> {
  const m = await loadPageHash();
  m.setGuestRamBytes(RAM_BYTES);
  const ram = new Uint8Array(m.memory.buffer, 0, HASH_PAGES * PAGE);
  for (let i = 0, x = 1; i < ram.length; i++) ram[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24 | 1;
  const out = m.buffer(HASH_PAGES);
  const round = () => {
    const zero = m.hashPages(0, HASH_PAGES, out);
    if (zero !== 0) throw new Error(`hashPages returned ${zero === HASH_PAGES_REFUSED ? 'REFUSED' : zero}, expected 0 zero pages`);
  };
  for (let i = 0; i < 20; i++) round();
  const bench = new Benchmark('page hash', round, { maxTime: quick ? 0.5 : 3, minSamples: quick ? 5 : 20 });
  bench.run();
  if (bench.error) throw new Error(`page hash bench: ${bench.error.message}`);
  return summarize(bench.stats.sample.map((seconds) => (seconds * 1e9) / HASH_PAGES));
}

export async function benchVirtio(opts: { quick: boolean; log: (line: string) => void }): Promise<VirtioResult> {
  const rows: VirtioRow[] = [];
  for (const run of [() => benchBlock(false, opts.quick), () => benchBlock(true, opts.quick), () => benchRng(opts.quick)]) {
    const row = await run();
    opts.log(`virtio: ${row.what}: ${formatSummary(row.perRequestNs, 'ns')} per request`);
    rows.push(row);
  }
  const perPageNs = await benchPageHash(opts.quick);
  opts.log(`virtio: page hash: ${formatSummary(perPageNs, 'ns')} per 4 KiB page`);
  return { name: 'virtio', batch: BATCH, rows, pageHash: { pages: HASH_PAGES, perPageNs } };
}

export function reportVirtio(r: VirtioResult): string {
  const ns = (s: Summary | undefined) => (s === undefined ? '' : formatSummary(s, 'ns', 0));
  return [
    `### virtio (Wasm device models, no-op host callbacks, ${r.batch} chains per kick; ns per request, medians and ranges of benchmark.js cycles)`,
    '| workload | kick to completion | kick: pop, parse, submit | completion: status, used ring, interrupt |',
    '| --- | --- | --- | --- |',
    ...r.rows.map((x) => `| ${x.what} | ${ns(x.perRequestNs)} | ${ns(x.submitNs)} | ${ns(x.completeNs)} |`),
    ...(r.pageHash ? [
      '',
      `Page hash (assembly/page_hash.ts, \`hashPages\` over ${r.pageHash.pages} pages of guest RAM per call): `
        + `${ns(r.pageHash.perPageNs)} per 4 KiB page, ${(PAGE / r.pageHash.perPageNs.median).toFixed(1)} GB/s.`,
    ] : []),
  ].join('\n');
}
