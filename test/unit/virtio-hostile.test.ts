// Property tests: a hostile driver fills the rings with arbitrary descriptor
// tables (loops, huge lengths, addresses at and past the end of guest RAM,
// nested indirect tables, avail.idx jumps). Whatever it writes, the device
// must not throw, must touch nothing outside guest RAM, and must either serve
// chains consistently or set DEVICE_NEEDS_RESET.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { Harness } from './device-harness.js';
import {
  createRngHarness, DESC_F, FEATURE, kick, mem, publish, queueLayout, readUsed, REG, setupDevice, STATUS, VIRTIO_BASE,
  writeDesc, type Descriptor, type Queue,
} from './virtio-rings.js';

const RAM = 1 << 20;
const CANARY_BYTES = 4 << 20;
const CANARY = 0xa5;
const RING = 0x1000;
/** Indirect tables the descriptors may point at. */
const TABLES = [0x8000, 0x9000];
const TABLE_ENTRIES = 8;

const addrArb = fc.oneof(
  fc.integer({ min: 0x2_0000, max: 0x2_ffff }), // ordinary buffers
  fc.constantFrom(...TABLES, RING, RING + 0x100), // the indirect tables and the rings themselves
  fc.integer({ min: RAM - 64, max: RAM + 64 }), // straddling the end of RAM
  fc.integer({ min: RAM, max: RAM + CANARY_BYTES }), // in the canary
  fc.constantFrom(0, 0xc000_0000, 2 ** 32 - 16, 2 ** 53 - 1), // zero, the module data, near 4 GiB, huge
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(Number), // anything (rounded to a double)
);
const lenArb = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.constantFrom(16, 32, 48, 128, 24, RAM, RAM - 1, 0x8000_0000, 0xffff_ffff),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);
/** Anything at all. */
const wildDescArb = (maxNext: number): fc.Arbitrary<Descriptor> =>
  fc.record({
    addr: addrArb,
    len: lenArb,
    flags: fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 0xffff })),
    next: fc.oneof(fc.integer({ min: 0, max: maxNext }), fc.integer({ min: 0, max: 0xffff })),
  });
/** What a correct driver might write, so that some chains are valid and get served. */
const saneDescArb = (tableSize: number): fc.Arbitrary<Descriptor> =>
  fc.record({
    addr: fc.integer({ min: 0x2_0000, max: 0x2_ffff }),
    len: fc.integer({ min: 0, max: 256 }),
    flags: fc.constantFrom(DESC_F.WRITE, DESC_F.WRITE, DESC_F.WRITE | DESC_F.NEXT, 0, DESC_F.NEXT),
    next: fc.integer({ min: 0, max: tableSize - 1 }),
  });
const indirectDescArb: fc.Arbitrary<Descriptor> = fc.record({
  addr: fc.constantFrom(...TABLES),
  len: fc.constantFrom(16, 32, 64, 16 * TABLE_ENTRIES),
  flags: fc.constant(DESC_F.INDIRECT),
  next: fc.constant(0),
});
const descArb = (tableSize: number): fc.Arbitrary<Descriptor> =>
  fc.oneof(
    { arbitrary: saneDescArb(tableSize), weight: 6 },
    { arbitrary: indirectDescArb, weight: 1 },
    { arbitrary: wildDescArb(tableSize + 1), weight: 1 },
  );

interface Round {
  /** Descriptors rewritten before publishing: [index, descriptor]. */
  writes: [number, Descriptor][];
  heads: number[];
  /** Extra jump of avail.idx past the published heads. */
  skip: number;
  via: 'mmio' | 'ioeventfd';
}

/** The driver's side of a round: rewrite descriptors, publish the heads, then jump avail.idx. */
function applyRound(h: Harness, q: Queue, round: Round): void {
  round.writes.forEach(([i, desc]) => writeDesc(h, q.desc, i, desc));
  publish(q, round.heads);
  if (round.skip) {
    q.availIdx = (q.availIdx + round.skip) & 0xffff;
    publish(q, []);
  }
}

const scenarioArb = fc.constantFrom(1, 2, 4, 8, 16).chain((size) =>
  fc.record({
    size: fc.constant(size),
    features: fc.subarray([FEATURE.EVENT_IDX, FEATURE.INDIRECT_DESC]),
    table: fc.array(descArb(size), { minLength: size, maxLength: size }),
    indirect: fc.array(fc.array(descArb(TABLE_ENTRIES), { minLength: TABLE_ENTRIES, maxLength: TABLE_ENTRIES }), {
      minLength: TABLES.length, maxLength: TABLES.length,
    }),
    usedEvent: fc.integer({ min: 0, max: 0xffff }),
    rounds: fc.array(
      fc.record({
        writes: fc.array(fc.tuple(fc.integer({ min: 0, max: size - 1 }), descArb(size)), { maxLength: 3 }),
        heads: fc.array(
          fc.oneof(
            { arbitrary: fc.integer({ min: 0, max: size - 1 }), weight: 9 },
            { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 },
          ),
          { maxLength: size },
        ),
        skip: fc.oneof(
          { arbitrary: fc.constant(0), weight: 8 },
          { arbitrary: fc.integer({ min: 1, max: size + 2 }), weight: 1 },
          { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 },
        ),
        via: fc.constantFrom('mmio' as const, 'ioeventfd' as const),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  }),
);

/** Sets up a fresh device on the shared instance with clean RAM and the canary above it. */
function prepare(h: Harness, size: number, features: bigint[]): Queue {
  new Uint8Array(h.devices.memory.buffer, 0, RAM).fill(0);
  setCanary(h);
  const dev = setupDevice(h, VIRTIO_BASE, [queueLayout(RING, size)], features.reduce((a, b) => a | b, 0n));
  h.fills.length = 0;
  h.pulses.length = 0;
  return dev.queues[0];
}

const canary = Buffer.alloc(CANARY_BYTES, CANARY);

function setCanary(h: Harness): void {
  new Uint8Array(h.devices.memory.buffer, RAM, CANARY_BYTES).set(canary);
}

function canaryIntact(h: Harness): boolean {
  return canary.equals(new Uint8Array(h.devices.memory.buffer, RAM, CANARY_BYTES));
}

test('virtio hostile: arbitrary rings never break the device or touch memory outside guest RAM', async () => {
  const h = await createRngHarness(RAM);
  let failures = 0;
  let served = 0;
  fc.assert(
    fc.property(scenarioArb, (s) => {
      const q = prepare(h, s.size, s.features);
      s.table.forEach((desc, i) => writeDesc(h, q.desc, i, desc));
      s.indirect.forEach((table, t) => table.forEach((desc, i) => writeDesc(h, TABLES[t]!, i, desc)));
      new DataView(h.devices.memory.buffer).setUint16(q.avail + 4 + 2 * q.size, s.usedEvent, true);
      // The device's view of the avail ring: how many entries each kick makes pending.
      let taken = 0;
      let expectServed = 0;
      let mustFail = false;
      const used: { id: number; len: number }[] = [];
      for (const round of s.rounds as Round[]) {
        applyRound(h, q, round);
        const pending = (q.availIdx - taken) & 0xffff;
        if (pending > s.size) mustFail = true;
        else if (!mustFail) expectServed += pending;
        taken = q.availIdx;
        kick(q, round.via);
        used.push(...readUsed(q));
      }
      const status = q.device.read(REG.STATUS);
      const failed = (status & STATUS.NEEDS_RESET) !== 0;
      if (failed) failures++;
      served += used.length;
      // Every fill lies in guest RAM, and nothing above it changed.
      for (const [gpa, len] of h.fills) assert.ok(gpa >= 0 && len > 0 && gpa + len <= RAM, `fill [${gpa}, +${len})`);
      assert.ok(canaryIntact(h), 'memory above guest RAM untouched');
      // A driver may hand the device its own avail or used ring to fill: the rings then say nothing reliable.
      const ringsEnd = q.used + 6 + 8 * q.size;
      if (h.fills.some(([gpa, len]) => gpa < ringsEnd && gpa + len > q.avail)) return;
      if (mustFail) assert.ok(failed, 'an avail.idx jump past the queue size fails the device');
      // Used entries: valid heads, each as long as the fills made for it, in order.
      let fill = 0;
      for (const { id, len } of used) {
        assert.ok(id < s.size, `used id ${id} within the queue`);
        let sum = 0;
        while (sum < len && fill < h.fills.length) sum += h.fills[fill++]![1];
        assert.is(sum, len, 'used length = bytes filled for that chain');
      }
      assert.is(fill, h.fills.length, 'no fill outside a used chain');
      // A device that did not fail took every chain the driver made available.
      if (!failed) {
        assert.is(used.length, expectServed, 'all available chains served');
        assert.is(status, 0x0f);
      } else {
        assert.ok(used.length <= expectServed);
      }
    }),
    { numRuns: 400 },
  );
  // The generators must exercise both outcomes.
  assert.ok(failures > 20 && served > 100, `failures ${failures}, chains served ${served}`);
});

/** What serving one chain must do, by an independent walk of the spec's rules (assembly/virtio/queue.ts QueueError codes). */
type Outcome = { error: number } | { fills: [number, number][]; len: number };

/** Walks the chain at `head` as the spec says a device must, noting every byte range it reads in `reads`. */
function referenceChain(view: DataView, q: Queue, head: number, indirectOk: boolean, reads: [number, number][]): Outcome {
  const inRam = (addr: bigint, len: number) => addr <= BigInt(RAM) && BigInt(len) <= BigInt(RAM) - addr;
  if (head >= q.size) return { error: 2 };
  let table = q.desc, entries = q.size, index = head, inIndirect = false, count = 0, total = 0, writableLen = 0;
  let sawWritable = false;
  const fills: [number, number][] = [];
  for (;;) {
    const at = table + 16 * index;
    reads.push([at, 16]);
    const addr = view.getBigUint64(at, true);
    const len = view.getUint32(at + 8, true);
    const flags = view.getUint16(at + 12, true);
    const next = view.getUint16(at + 14, true);
    if (flags & DESC_F.INDIRECT) {
      if (!indirectOk) return { error: 7 };
      if (inIndirect) return { error: 8 };
      if (flags & DESC_F.NEXT) return { error: 9 };
      if (len === 0 || len % 16 !== 0) return { error: 10 };
      if (!inRam(addr, len)) return { error: 5 };
      [table, entries, index, inIndirect] = [Number(addr), len / 16, 0, true];
      continue;
    }
    if (++count > q.size) return { error: 4 };
    if (!inRam(addr, len)) return { error: 5 };
    total += len;
    if (total > 0xffff_ffff) return { error: 6 };
    if (flags & DESC_F.WRITE) {
      if (len > 0) fills.push([Number(addr), len]);
      writableLen += len;
      sawWritable = true;
    } else if (sawWritable) {
      return { error: 11 };
    }
    if (!(flags & DESC_F.NEXT)) return { fills, len: writableLen };
    if (next >= entries) return { error: 3 };
    index = next;
  }
}

test('virtio hostile: the device serves exactly the chains a reference walk accepts, and fails at the first it refuses', async () => {
  const h = await createRngHarness(RAM);
  let exactRounds = 0;
  fc.assert(
    fc.property(scenarioArb, (s) => {
      const q = prepare(h, s.size, s.features);
      const indirectOk = s.features.includes(FEATURE.INDIRECT_DESC);
      s.table.forEach((desc, i) => writeDesc(h, q.desc, i, desc));
      s.indirect.forEach((table, t) => table.forEach((desc, i) => writeDesc(h, TABLES[t]!, i, desc)));
      let taken = 0;
      let failed = 0;
      for (const round of s.rounds as Round[]) {
        applyRound(h, q, round);
        // Expected: from the memory as it is before the kick, and every range that prediction read.
        const view = mem(h);
        const reads: [number, number][] = [[q.avail, 6 + 2 * q.size], [q.used, 6 + 8 * q.size]];
        const expectUsed: { id: number; len: number }[] = [];
        const expectFills: [number, number][] = [];
        let expectError = failed;
        const pending = (q.availIdx - taken) & 0xffff;
        if (!failed && pending > s.size) expectError = 1;
        for (let k = 0; !expectError && k < pending; k++) {
          const head = view.getUint16(q.avail + 4 + 2 * ((taken + k) % q.size), true);
          const outcome = referenceChain(view, q, head, indirectOk, reads);
          if ('error' in outcome) {
            expectError = outcome.error;
          } else {
            expectUsed.push({ id: head, len: outcome.len });
            expectFills.push(...outcome.fills);
          }
        }
        const fillsBefore = h.fills.length;
        kick(q, round.via);
        const fills = h.fills.slice(fillsBefore);
        // Filling what the prediction read (rings, tables) changes what the device saw after that fill.
        if (fills.some(([gpa, len]) => reads.some(([at, n]) => gpa < at + n && at < gpa + len))) return;
        exactRounds++;
        assert.equal(fills, expectFills, 'fills');
        assert.equal(readUsed(q), expectUsed, 'used entries');
        assert.is(h.devices.virtioFailure(0), expectError, 'QueueError');
        failed = expectError;
        taken = (taken + expectUsed.length) & 0xffff;
        if (expectError === 0) taken = q.availIdx;
      }
    }),
    { numRuns: 400 },
  );
  assert.ok(exactRounds > 200, `only ${exactRounds} rounds checked exactly`);
});

test('virtio hostile: random register writes never break the module', async () => {
  const h = await createRngHarness(RAM);
  const offsets = Object.values(REG);
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          offset: fc.oneof(fc.constantFrom(...offsets), fc.integer({ min: 0, max: 0x1ff })),
          size: fc.constantFrom(1, 2, 4, 8),
          value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          read: fc.boolean(),
        }),
        { maxLength: 60 },
      ),
      (ops) => {
        setCanary(h);
        for (const op of ops) {
          const addr = VIRTIO_BASE + BigInt(op.offset);
          if (op.read) h.devices.mmioRead(addr, op.size);
          else h.devices.mmioWrite(addr, op.size, op.value);
          h.devices.virtioNotify(0, 0);
        }
        for (const [gpa, len] of h.fills) assert.ok(gpa + len <= RAM);
        assert.ok(canaryIntact(h));
        // Whatever state the driver left, a snapshot of it restores.
        const blob = h.devices.saveState();
        h.devices.restoreState(blob);
        assert.equal(h.devices.saveState(), blob);
      },
    ),
    { numRuns: 300 },
  );
});

test.run();
