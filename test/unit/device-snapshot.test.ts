import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createHarness, type Harness } from './device-harness.js';

const COM1 = 0x3f8;
const [RBR, IER, FCR, LCR, MCR, LSR, MSR, SCR] = [0, 1, 2, 3, 4, 5, 6, 7];
const IIR = FCR;
const KBC_DATA = 0x60, KBC_CMD = 0x64;
const RTC_INDEX = 0x70, RTC_DATA = 0x71;
const GSIS = [1, 4, 12];
const HEADER_LENGTH = 8, SECTION_HEADER_LENGTH = 10;

/** One step of guest or host traffic. */
type Op =
  | { kind: 'out'; port: number; value: number }
  | { kind: 'in'; port: number }
  | { kind: 'rx'; byte: number }
  | { kind: 'clock'; seconds: number };

/** What one op produced: the value read (or whether the UART took a byte) and the line levels after it. */
function run(h: Harness, op: Op): string {
  let result = '';
  if (op.kind === 'out') h.outb(op.port, op.value);
  else if (op.kind === 'in') result = String(h.inb(op.port));
  else if (op.kind === 'rx') result = String(h.devices.serialReceive(op.byte));
  else h.clock.now += op.seconds;
  return `${result}|${GSIS.map((g) => (h.level(g) ? 1 : 0)).join('')}`;
}

/** Runs `ops` and returns everything observable: per-op results, console bytes and resets they caused. */
function transcript(h: Harness, ops: Op[]): unknown {
  const consoleBefore = h.console.length, resetsBefore = h.resets;
  const steps = ops.map((op) => run(h, op));
  return { steps, console: h.console.slice(consoleBefore), resets: h.resets - resetsBefore };
}

const out = (port: number, value: number): Op => ({ kind: 'out', port, value });
const inp = (port: number): Op => ({ kind: 'in', port });

/** Reads every register of every device, in an order that also consumes FIFO bytes and acknowledges interrupts. */
const probe: Op[] = [
  inp(COM1 + LCR), inp(COM1 + RBR), inp(COM1 + IER), out(COM1 + LCR, 0x03),
  inp(COM1 + IER), inp(COM1 + IIR), inp(COM1 + LSR), inp(COM1 + MSR), inp(COM1 + MCR), inp(COM1 + SCR),
  ...Array.from({ length: 17 }, () => inp(COM1 + RBR)),
  inp(COM1 + IIR), inp(COM1 + IIR), inp(COM1 + LSR), out(COM1 + RBR, 0x41), inp(COM1 + IIR),
  inp(KBC_CMD), inp(KBC_DATA), inp(KBC_CMD), out(KBC_CMD, 0x20), inp(KBC_DATA), out(KBC_CMD, 0xd0), inp(KBC_DATA),
  ...[0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x7f].flatMap((r) => [
    out(RTC_INDEX, r), inp(RTC_DATA),
  ]),
];

/** A fresh instance restored from `blob`, its host clock at `now`. */
async function restoredFrom(blob: Uint8Array, now: number): Promise<Harness> {
  const h = await createHarness(now);
  h.devices.restoreState(blob);
  return h;
}

interface Section { tag: string; version: number; payload: number; length: number }

/** The sections of a blob, with their payload offsets. */
function sections(blob: Uint8Array): Section[] {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const result: Section[] = [];
  let at = HEADER_LENGTH;
  for (let i = 0; i < view.getUint16(6, true); i++) {
    const tag = String.fromCharCode(...blob.subarray(at, at + 4));
    const length = view.getUint32(at + 6, true);
    result.push({ tag, version: view.getUint16(at + 4, true), payload: at + SECTION_HEADER_LENGTH, length });
    at += SECTION_HEADER_LENGTH + length;
  }
  return result;
}

function section(blob: Uint8Array, tag: string): Section {
  const s = sections(blob).find((x) => x.tag === tag);
  if (!s) throw new Error(`no section ${tag}`);
  return s;
}

/** A copy of `blob` with the bytes at `offset` replaced. */
function patched(blob: Uint8Array, offset: number, ...bytes: number[]): Uint8Array {
  const copy = blob.slice();
  copy.set(bytes, offset);
  return copy;
}

/** A UART with 3 bytes in its FIFO (below the trigger level), DLAB set and a THRE interrupt pending. */
async function busyUart(): Promise<Harness> {
  const h = await createHarness();
  h.outb(COM1 + FCR, 0x81); // FIFO on, trigger level 8
  h.outb(COM1 + MCR, 0x0b);
  h.outb(COM1 + SCR, 0x5a);
  h.outb(COM1 + IER, 0x03); // RDI | THRI: raises THRE
  for (const b of [0x61, 0x62, 0x63]) assert.ok(h.devices.serialReceive(b));
  h.outb(COM1 + LCR, 0x80 | 0x03);
  h.outb(COM1 + RBR, 0x01); // divisor 1 = 115200 baud
  h.outb(COM1 + IER, 0x00);
  return h;
}

test('snapshot: a UART with FIFO bytes, DLAB set and THRE pending behaves identically after restore', async () => {
  const a = await busyUart();
  const blob = a.devices.saveState();
  const b = await restoredFrom(blob, a.clock.now);
  assert.ok(a.level(4), 'original asserts COM1');
  assert.ok(b.level(4), 'restore drives the line to the restored level');
  assert.equal(b.devices.saveState(), blob, 'saving again gives the same blob');
  const seen = transcript(a, probe);
  assert.equal(transcript(b, probe), seen);
  assert.equal((seen as { console: number[] }).console, [0x41]);
});

test('snapshot: an i8042 waiting for a command data byte takes it after restore', async () => {
  const a = await createHarness();
  a.outb(KBC_CMD, 0x60); // write CTR: the next data byte is the new CTR
  const b = await restoredFrom(a.devices.saveState(), a.clock.now);
  const ops = [out(KBC_DATA, 0x47), out(KBC_CMD, 0x20), inp(KBC_CMD), inp(KBC_DATA), out(KBC_CMD, 0xd1), out(KBC_DATA, 0x00)];
  const seen = transcript(a, ops) as { steps: string[]; resets: number };
  assert.equal(transcript(b, ops), seen);
  assert.ok(seen.steps[2].endsWith('|100'), 'keyboard interrupt raised for the CTR byte');
  assert.is(seen.steps[3], '71|000', 'CTR read back, which lowers the interrupt');
  assert.is(seen.resets, 1);
});

test('snapshot: the RTC keeps the guest-set offset and follows host time after restore', async () => {
  const a = await createHarness(1_700_000_000);
  const set = (reg: number, value: number) => {
    a.outb(RTC_INDEX, reg);
    a.outb(RTC_DATA, value);
  };
  set(0x0b, 0x82); // SET, 24-hour
  for (const [reg, value] of [[0x00, 0x00], [0x02, 0x00], [0x04, 0x00], [0x07, 0x01], [0x08, 0x01], [0x09, 0x30], [0x32, 0x20]]) {
    set(reg, value);
  }
  set(0x0b, 0x02); // run from 2030-01-01 00:00:00
  const blob = a.devices.saveState();
  // A clone restored 1000 s of host time later reads the guest's time 1000 s on, not the saved wall time.
  a.clock.now += 1000;
  const b = await restoredFrom(blob, a.clock.now);
  const clock = [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32].flatMap((r) => [out(RTC_INDEX, r), inp(RTC_DATA)]);
  const seen = transcript(a, clock) as { steps: string[] };
  assert.equal(transcript(b, clock), seen);
  assert.equal(seen.steps.filter((_, i) => i % 2).map((s) => Number(s.split('|')[0])), [0x40, 0x16, 0, 1, 1, 0x30, 0x20]);
});

test('snapshot: the blob has a versioned header and one versioned section per device', async () => {
  const blob = (await busyUart()).devices.saveState();
  assert.equal([...blob.subarray(0, 4)], [...Buffer.from('HKDS')]);
  assert.is(new DataView(blob.buffer).getUint16(4, true), 1);
  const list = sections(blob);
  assert.equal(list.map((s) => [s.tag, s.version]), [['UART', 1], ['KBC ', 1], ['RTC ', 1]]);
  const last = list[list.length - 1];
  assert.is(last.payload + last.length, blob.length, 'nothing after the last section');
  assert.is(section(blob, 'UART').length, 12 + 3, 'fixed fields, then the 3 queued bytes');
});

/** Restoring `bad` must throw `message` and leave a busy instance exactly as it was, without irq callbacks. */
async function assertRefused(bad: Uint8Array, message: RegExp): Promise<void> {
  const h = await busyUart();
  h.outb(KBC_CMD, 0xd4);
  const before = h.devices.saveState();
  const callbacks = h.irqLog.length;
  assert.throws(() => h.devices.restoreState(bad), message);
  assert.equal(h.devices.saveState(), before, 'state unchanged');
  assert.is(h.irqLog.length, callbacks, 'no interrupt line moved');
}

test('snapshot: truncated, oversized and misframed blobs are refused without changing anything', async () => {
  const h = await createHarness();
  h.outb(COM1 + FCR, 0x01);
  h.devices.serialReceive(0x55);
  const good = h.devices.saveState();
  for (let length = 0; length < good.length; length++) {
    await assertRefused(good.subarray(0, length), /rejected.*(truncated|lacks the section|wrong length)/);
  }
  const longer = new Uint8Array(good.length + 1);
  longer.set(good);
  await assertRefused(longer, /bytes after its last section/);
  await assertRefused(new Uint8Array((1 << 20) + 1), /more than the 1048576 allowed/);
  await assertRefused(patched(good, 0, 0x48, 0x4b, 0x44, 0x54), /magic "HKDS"/);
  await assertRefused(patched(good, 4, 2, 0), /format version/);
  const uart = section(good, 'UART');
  const header = uart.payload - SECTION_HEADER_LENGTH;
  await assertRefused(patched(good, header + 4, 2, 0), /section "UART".*version this device model does not support/);
  await assertRefused(patched(good, header, ...Buffer.from('VBLK')), /section "VBLK".*device this machine does not have/);
  const rtc = section(good, 'RTC ');
  await assertRefused(patched(good, rtc.payload - SECTION_HEADER_LENGTH, ...Buffer.from('UART')), /two sections/);
  await assertRefused(patched(good, 6, 2, 0), /lacks the section/);
  // A section one byte longer than its device's fields.
  const padded = new Uint8Array(good.length + 1);
  padded.set(good.subarray(0, rtc.payload + rtc.length));
  new DataView(padded.buffer).setUint32(rtc.payload - 4, rtc.length + 1, true);
  await assertRefused(padded, /section "RTC ".*wrong length/);
});

test('snapshot: values a device cannot hold are refused without changing anything', async () => {
  const good = (await busyUart()).devices.saveState();
  const uart = section(good, 'UART').payload;
  const kbc = section(good, 'KBC ').payload;
  const rtc = section(good, 'RTC ').payload;
  const cases: [string, Uint8Array][] = [
    ['UART IER above its low nibble', patched(good, uart, 0x10)],
    ['UART MCR above bit 4', patched(good, uart + 2, 0x20)],
    ['UART FCR trigger bits with the FIFO off', patched(good, uart + 4, 0x80)],
    ['UART FCR reserved bit', patched(good, uart + 4, 0x89)],
    ['UART LSR error other than overrun', patched(good, uart + 7, 0x04)],
    ['UART MSR deltas above the low nibble', patched(good, uart + 8, 0x10)],
    ['UART boolean of 2', patched(good, uart + 9, 2)],
    ['UART THRE pending with THRI off', patched(good, uart, 0x01)],
    ['UART FIFO count above 16', patched(good, uart + 11, 17)],
    ['UART 3 bytes queued without FIFO', patched(good, uart + 4, 0x00)],
    ['i8042 pending command that takes no data', patched(good, kbc + 2, 0x20)],
    ['i8042 boolean of 2', patched(good, kbc + 5, 2)],
    ['RTC index with bit 7', patched(good, rtc, 0x80)],
    ['RTC offset NaN', patched(good, rtc + 2, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f)],
    ['RTC offset beyond year 9999', patched(good, rtc + 2, ...new Uint8Array(new Float64Array([1e15]).buffer))],
    ['RTC UIP stored in status A', patched(good, rtc + 10 + 0x0a, 0xa6)],
    ['RTC SET with UIE', patched(good, rtc + 10 + 0x0b, 0x92)],
    ['RTC status C not zero', patched(good, rtc + 10 + 0x0c, 0x10)],
  ];
  for (const [what, bad] of cases) {
    try {
      await assertRefused(bad, /wrong length or values the device cannot hold/);
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`);
    }
  }
});

const ports = [...Array.from({ length: 8 }, (_, i) => COM1 + i), KBC_DATA, KBC_CMD, RTC_INDEX, RTC_DATA];
const kbcCommands = [0x20, 0x60, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xad, 0xae, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xfe];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('out' as const), port: fc.constantFrom(...ports), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('out' as const), port: fc.constant(KBC_CMD), value: fc.constantFrom(...kbcCommands) }),
  fc.record({ kind: fc.constant('in' as const), port: fc.constantFrom(...ports) }),
  fc.record({ kind: fc.constant('rx' as const), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('clock' as const), seconds: fc.double({ min: 0, max: 100_000, noNaN: true }) }),
);

test('snapshot: after random traffic, a restored instance answers further traffic exactly as the original', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 80 }), fc.array(opArb, { maxLength: 80 }), async (before, after) => {
      const a = await createHarness();
      transcript(a, before);
      const b = await restoredFrom(a.devices.saveState(), a.clock.now);
      for (const g of GSIS) assert.is(b.level(g), a.level(g), `GSI ${g} level after restore`);
      assert.equal(transcript(b, [...after, ...probe]), transcript(a, [...after, ...probe]));
    }),
    { numRuns: 60 },
  );
});

test.run();
