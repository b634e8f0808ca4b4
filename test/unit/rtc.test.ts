import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createHarness, type Harness } from './device-harness.js';

const INDEX = 0x70;
const DATA = 0x71;
const [SEC, MIN, HOUR, WEEKDAY, DAY, MONTH, YEAR, A, B, C, D, CENTURY] =
  [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x32];
const A_UIP = 0x80, B_SET = 0x80, B_UIE = 0x10, B_BINARY = 0x04, B_24H = 0x02;

const cmos = (h: Harness) => ({
  read(reg: number): number {
    h.outb(INDEX, reg);
    return h.inb(DATA);
  },
  write(reg: number, value: number): void {
    h.outb(INDEX, reg);
    h.outb(DATA, value);
  },
});

const bcd = (n: number) => ((n / 10) << 4) | n % 10;
const unixSeconds = (iso: string) => Date.parse(iso) / 1000;

interface ClockFields { year: number; month: number; day: number; hour: number; minute: number; second: number; weekday: number }

/** Reads the clock (24-hour mode) the way mc146818_get_time() does, retrying across an update. */
function readClock(h: Harness): ClockFields {
  const c = cmos(h);
  const binary = c.read(B) & B_BINARY;
  const read = (reg: number) => {
    const v = c.read(reg);
    return binary ? v : (v >> 4) * 10 + (v & 0x0f);
  };
  for (;;) {
    const second = read(SEC);
    if (c.read(A) & A_UIP) continue;
    const fields = {
      second, minute: read(MIN), hour: read(HOUR), weekday: read(WEEKDAY), day: read(DAY),
      month: read(MONTH), year: read(CENTURY) * 100 + read(YEAR),
    };
    if (!(c.read(A) & A_UIP) && read(SEC) === second) return fields;
  }
}

function fieldsOf(unix: number): ClockFields {
  const d = new Date(Math.floor(unix) * 1000);
  return {
    year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(),
    hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), weekday: d.getUTCDay() + 1,
  };
}

test('rtc: time registers are BCD, 24-hour, from the host clock; status defaults match QEMU', async () => {
  const h = await createHarness(unixSeconds('2024-02-29T13:45:56.5Z'));
  const c = cmos(h);
  assert.is(c.read(SEC), 0x56);
  assert.is(c.read(MIN), 0x45);
  assert.is(c.read(HOUR), 0x13);
  assert.is(c.read(WEEKDAY), 5, 'Thursday (Sunday = 1)');
  assert.is(c.read(DAY), 0x29);
  assert.is(c.read(MONTH), 0x02);
  assert.is(c.read(YEAR), 0x24);
  assert.is(c.read(CENTURY), 0x20);
  assert.is(c.read(A), 0x26);
  assert.is(c.read(B), B_24H);
  assert.is(c.read(C), 0x00);
  assert.is(c.read(D), 0x80, 'valid RAM and time; bit 6 clear as Linux checks');
  h.clock.now += 61;
  assert.is(c.read(SEC), 0x57);
  assert.is(c.read(MIN), 0x46);
});

test('rtc: the NMI-disable bit of the index port does not change the register selected', async () => {
  const h = await createHarness(unixSeconds('2001-01-01T00:00:42Z'));
  h.outb(INDEX, 0x80 | SEC);
  assert.is(h.inb(DATA), 0x42);
  assert.is(h.inb(INDEX), 0xff, 'the index port is write-only');
});

test('rtc: binary and 12-hour modes', async () => {
  const h = await createHarness(unixSeconds('2024-07-04T00:30:59Z'));
  const c = cmos(h);
  c.write(B, B_24H | B_BINARY);
  assert.equal([c.read(HOUR), c.read(MIN), c.read(SEC), c.read(YEAR)], [0, 30, 59, 24]);
  c.write(B, 0); // BCD, 12-hour
  assert.is(c.read(HOUR), 0x12, '00:30 is 12 AM');
  h.clock.now += 13 * 3600;
  assert.is(c.read(HOUR), 0x80 | 0x01, '13:30 is 1 PM');
  h.clock.now -= 1 * 3600;
  assert.is(c.read(HOUR), 0x80 | 0x12, '12:30 is 12 PM');
});

test('rtc: UIP is set only in the last 244 us before a second ends', async () => {
  const h = await createHarness(1_000_000.5);
  const c = cmos(h);
  assert.is(c.read(A) & A_UIP, 0);
  h.clock.now = 1_000_000.9999;
  assert.is(c.read(A), A_UIP | 0x26);
  h.clock.now = 1_000_001.0001;
  assert.is(c.read(A) & A_UIP, 0);
  c.write(A, 0xa6);
  assert.is(c.read(A) & A_UIP, 0, 'UIP is read-only');
});

test('rtc: setting the clock with SET, then it runs on from the new time', async () => {
  const h = await createHarness(unixSeconds('2024-05-01T10:00:00Z'));
  const c = cmos(h);
  c.write(B, B_24H | B_SET | B_UIE);
  assert.is(c.read(B), B_24H | B_SET, 'SET clears UIE');
  const frozen = c.read(SEC);
  h.clock.now += 5;
  assert.is(c.read(SEC), frozen, 'frozen while SET');
  c.write(SEC, 0x58);
  c.write(MIN, 0x59);
  c.write(HOUR, 0x23);
  c.write(DAY, 0x31);
  c.write(MONTH, 0x12);
  c.write(YEAR, 0x99);
  c.write(CENTURY, 0x19);
  c.write(B, B_24H);
  h.clock.now += 3;
  assert.equal(readClock(h), fieldsOf(unixSeconds('2000-01-01T00:00:01Z')));
});

test('rtc: writing one field of a running clock keeps the others', async () => {
  const h = await createHarness(unixSeconds('2024-05-01T10:20:30Z'));
  const c = cmos(h);
  c.write(HOUR, 0x07);
  assert.equal([c.read(HOUR), c.read(MIN), c.read(SEC), c.read(DAY)], [0x07, 0x20, 0x30, 0x01]);
});

test('rtc: an impossible date is ignored', async () => {
  const h = await createHarness(unixSeconds('2023-03-15T08:00:00Z'));
  const c = cmos(h);
  c.write(B, B_24H | B_SET);
  c.write(MONTH, 0x02);
  c.write(DAY, 0x30); // February 30th
  c.write(B, B_24H);
  assert.equal([c.read(MONTH), c.read(DAY)], [0x03, 0x15]);
  c.write(MONTH, 0x1a); // not BCD
  assert.is(c.read(MONTH), 0x03);
});

test('rtc: CMOS memory keeps what the guest stores; C and D are read-only', async () => {
  const h = await createHarness();
  const c = cmos(h);
  for (let reg = 0x0e; reg < 0x80; reg++) if (reg !== CENTURY) c.write(reg, reg ^ 0x5a);
  for (let reg = 0x0e; reg < 0x80; reg++) if (reg !== CENTURY) assert.is(c.read(reg), reg ^ 0x5a);
  c.write(C, 0xff);
  c.write(D, 0x00);
  assert.is(c.read(C), 0);
  assert.is(c.read(D), 0x80);
  assert.is(h.devices.ioRead(DATA, 2), 0xffff, 'only byte accesses are decoded');
});

test('rtc: a host clock that is not a number reads as the epoch instead of trapping', async () => {
  const h = await createHarness(Number.NaN);
  assert.equal(readClock(h), fieldsOf(0));
  h.clock.now = Number.POSITIVE_INFINITY;
  assert.equal(readClock(h), fieldsOf(0));
});

const yearRange = { min: unixSeconds('0000-01-01T00:00:00Z'), max: unixSeconds('9999-12-31T23:59:59Z') };

test('rtc: the calendar matches JavaScript Date for any time the registers can hold', async () => {
  const h = await createHarness();
  cmos(h).write(B, B_24H | B_BINARY);
  fc.assert(
    fc.property(fc.integer(yearRange), (t) => {
      h.clock.now = t + 0.25;
      assert.equal(readClock(h), fieldsOf(t));
    }),
    { numRuns: 2000 },
  );
  h.clock.now = yearRange.max + 1e6;
  assert.equal(readClock(h), fieldsOf(yearRange.max), 'clamped to 9999-12-31 23:59:59');
});

test('rtc: a time the guest sets reads back, in BCD', async () => {
  const h = await createHarness();
  const c = cmos(h);
  fc.assert(
    fc.property(fc.integer(yearRange), (t) => {
      const f = fieldsOf(t);
      c.write(B, B_24H | B_SET);
      c.write(SEC, bcd(f.second));
      c.write(MIN, bcd(f.minute));
      c.write(HOUR, bcd(f.hour));
      c.write(DAY, bcd(f.day));
      c.write(MONTH, bcd(f.month));
      c.write(YEAR, bcd(f.year % 100));
      c.write(CENTURY, bcd(Math.floor(f.year / 100)));
      c.write(B, B_24H);
      assert.equal(
        [c.read(CENTURY), c.read(YEAR), c.read(MONTH), c.read(DAY), c.read(HOUR), c.read(MIN), c.read(WEEKDAY)],
        [bcd(Math.floor(f.year / 100)), bcd(f.year % 100), bcd(f.month), bcd(f.day), bcd(f.hour), bcd(f.minute), f.weekday],
      );
    }),
    { numRuns: 500 },
  );
});

test('rtc: random register traffic never traps', async () => {
  const h = await createHarness();
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.boolean(), fc.double()), { maxLength: 100, size: 'max' }),
      (ops) => {
        for (const [reg, value, isWrite, now] of ops) {
          h.clock.now = now;
          h.outb(INDEX, reg);
          if (isWrite) h.outb(DATA, value);
          else assert.ok(h.inb(DATA) <= 0xff);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test.run();
