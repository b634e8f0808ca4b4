import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createHarness, type Harness } from './device-harness.js';

const COM1 = 0x3f8;
const GSI = 4;
const [RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR] = [0, 1, 2, 3, 4, 5, 6, 7];
const FCR = IIR;
const EFR = IIR; // where 16650-class UARTs put EFR when LCR = 0xBF
const IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08;
const IIR_NONE = 0x01, IIR_THRE = 0x02, IIR_RDA = 0x04, IIR_RLS = 0x06, IIR_TIMEOUT = 0x0c, IIR_MSI = 0x00;
const LSR_DR = 0x01, LSR_OE = 0x02, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const MCR_LOOP = 0x10;

const uart = (h: Harness) => ({
  in: (reg: number) => h.inb(COM1 + reg),
  out: (reg: number, value: number) => h.outb(COM1 + reg, value),
});

/** drivers/tty/serial/8250/8250_port.c autoconfig() as Linux 6.1 runs it on COM1 (variants probing on, as in Debian's config). */
function linuxAutoconfig(h: Harness): string {
  const u = uart(h);
  const ier = u.in(IER);
  u.out(IER, 0);
  const scratch2 = u.in(IER) & 0x0f;
  u.out(IER, 0x0f);
  const scratch3 = u.in(IER) & 0x0f;
  u.out(IER, ier);
  if (scratch2 !== 0 || scratch3 !== 0x0f) return 'none (IER test)';
  const saveMcr = u.in(MCR);
  const saveLcr = u.in(LCR);
  u.out(MCR, MCR_LOOP | 0x0a);
  const status1 = u.in(MSR) & 0xf0;
  u.out(MCR, saveMcr);
  if (status1 !== 0x90) return 'none (loop test)';
  u.out(LCR, 0xbf);
  u.out(EFR, 0);
  u.out(LCR, 0);
  u.out(FCR, 0x01);
  const kind = u.in(IIR) >> 6;
  if (kind !== 3) return ['8250/16450', 'unknown', '16550'][kind]!;
  // autoconfig_16550a()
  u.out(LCR, 0x80);
  if (u.in(EFR) === 0) return '16650 or FSL64';
  u.out(LCR, 0xbf);
  if (u.in(EFR) === 0) return '16650V2 (EFR)';
  u.out(LCR, 0);
  const mcr = u.in(MCR);
  u.out(LCR, 0xe0);
  let excr1 = u.in(0x02);
  if (!((excr1 ^ mcr) & MCR_LOOP)) {
    u.out(LCR, 0);
    u.out(MCR, mcr ^ MCR_LOOP);
    u.out(LCR, 0xe0);
    excr1 = u.in(0x02);
    u.out(LCR, 0);
    u.out(MCR, mcr);
    if ((excr1 ^ mcr) & MCR_LOOP) return 'NS16550A';
  }
  u.out(LCR, 0);
  u.out(FCR, 0x01 | 0x20);
  const s1 = u.in(IIR) >> 5;
  u.out(FCR, 0x01);
  u.out(LCR, 0x80);
  u.out(FCR, 0x01 | 0x20);
  const s2 = u.in(IIR) >> 5;
  u.out(FCR, 0x01);
  u.out(LCR, 0);
  if (s1 === 6 && s2 === 7) return '16750';
  const iersave = u.in(IER);
  u.out(IER, iersave & ~0x40);
  if (!(u.in(IER) & 0x40)) {
    u.out(IER, iersave | 0x40);
    if (u.in(IER) & 0x40) return 'XScale';
  }
  u.out(IER, iersave);
  if (sizeFifo(h) === 64) return 'U6_16550A';
  u.out(LCR, saveLcr);
  return '16550A';
}

/** size_fifo(): count how many of 256 looped-back bytes the receiver holds. */
function sizeFifo(h: Harness): number {
  const u = uart(h);
  const oldLcr = u.in(LCR);
  u.out(LCR, 0);
  const oldFcr = u.in(FCR);
  const oldMcr = u.in(MCR);
  u.out(FCR, 0x07);
  u.out(MCR, MCR_LOOP);
  u.out(LCR, 0x80);
  const oldDl = u.in(0) | (u.in(1) << 8);
  u.out(0, 1);
  u.out(1, 0);
  u.out(LCR, 0x03);
  for (let i = 0; i < 256; i++) u.out(RBR, i);
  let count = 0;
  for (; u.in(LSR) & LSR_DR && count < 256; count++) u.in(RBR);
  u.out(FCR, oldFcr);
  u.out(MCR, oldMcr);
  u.out(LCR, 0x80);
  u.out(0, oldDl & 0xff);
  u.out(1, oldDl >> 8);
  u.out(LCR, oldLcr);
  return count;
}

test('serial: Linux autoconfig detects a 16550A with a 16-byte FIFO', async () => {
  const h = await createHarness();
  assert.is(linuxAutoconfig(h), '16550A');
  assert.equal(h.console, [], 'probing must not leak bytes to the console');
  assert.is(h.level(GSI), false);
});

test('serial: DLAB switches offsets 0 and 1 to the divisor latch', async () => {
  const h = await createHarness();
  const u = uart(h);
  u.out(IER, IER_RDI);
  u.out(LCR, 0x83); // DLAB + 8N1
  u.out(0, 0x01); // 115200 baud
  u.out(1, 0x00);
  assert.is(u.in(0), 0x01);
  assert.is(u.in(1), 0x00);
  u.out(LCR, 0x03);
  assert.is(u.in(IER), IER_RDI, 'IER untouched by divisor writes');
  assert.is(u.in(LCR), 0x03);
  assert.equal(h.console, [], 'divisor writes are not transmitted');
  u.out(RBR, 0x41);
  assert.equal(h.console, [0x41]);
});

test('serial: FCR enables the FIFO, IIR shows it in bits 7:6', async () => {
  const h = await createHarness();
  const u = uart(h);
  assert.is(u.in(IIR), IIR_NONE);
  u.out(FCR, 0xc7);
  assert.is(u.in(IIR), 0xc0 | IIR_NONE);
  u.out(FCR, 0x00);
  assert.is(u.in(IIR), IIR_NONE);
});

test('serial: enabling IER.THRI raises THRE, reading IIR acknowledges it, re-enabling raises it again', async () => {
  const h = await createHarness();
  const u = uart(h);
  u.out(FCR, 0xc7);
  u.out(IER, IER_THRI);
  assert.is(h.level(GSI), true);
  const iir1 = u.in(IIR);
  assert.is(iir1, 0xc0 | IIR_THRE);
  assert.is(h.level(GSI), false);
  assert.is(u.in(IIR), 0xc0 | IIR_NONE);
  // Linux's THRE test in serial8250_do_startup().
  u.out(IER, 0);
  u.out(IER, IER_THRI);
  assert.is(u.in(IIR), 0xc0 | IIR_THRE, 'THRE re-asserted (no UART_BUG_THRE)');
  u.out(IER, 0);
  assert.is(h.level(GSI), false);
});

test('serial: transmitting goes to the host and re-arms THRE', async () => {
  const h = await createHarness();
  const u = uart(h);
  u.out(IER, IER_THRI);
  u.in(IIR);
  assert.is(h.level(GSI), false);
  for (const c of 'hi\n') u.out(RBR, c.charCodeAt(0));
  assert.equal(String.fromCharCode(...h.console), 'hi\n');
  assert.is(u.in(LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
  assert.is(h.level(GSI), true, 'holding register empty again');
  assert.is(u.in(IIR) & 0x0f, IIR_THRE);
});

test('serial: polled transmit with IER = 0 raises no interrupt', async () => {
  const h = await createHarness();
  const u = uart(h);
  for (let i = 0; i < 10; i++) {
    assert.ok(u.in(LSR) & LSR_THRE);
    u.out(RBR, 0x30 + i);
  }
  assert.is(h.console.length, 10);
  assert.equal(h.irqLog, []);
});

test('serial: received bytes raise the data interrupt and come out in order', async () => {
  const h = await createHarness();
  const u = uart(h);
  u.out(FCR, 0xc7); // trigger level 14
  u.out(IER, IER_RDI);
  assert.is(h.level(GSI), false);
  assert.ok(h.devices.serialReceive(0x61));
  assert.is(h.level(GSI), true);
  assert.is(u.in(IIR), 0xc0 | IIR_TIMEOUT, 'below the trigger level: character timeout');
  assert.ok(u.in(LSR) & LSR_DR);
  for (let i = 1; i < 14; i++) assert.ok(h.devices.serialReceive(0x61 + i));
  assert.is(u.in(IIR), 0xc0 | IIR_RDA, 'trigger level reached');
  const got: number[] = [];
  while (u.in(LSR) & LSR_DR) got.push(u.in(RBR));
  assert.equal(got, Array.from({ length: 14 }, (_, i) => 0x61 + i));
  assert.is(h.level(GSI), false);
  assert.is(u.in(IIR), 0xc0 | IIR_NONE);
  assert.is(u.in(RBR), 0x61 + 13, 'an empty RBR repeats the last byte');
});

test('serial: the receive FIFO holds 16 bytes, 1 without FIFO', async () => {
  const h = await createHarness();
  const u = uart(h);
  assert.ok(h.devices.serialReceive(1));
  assert.not.ok(h.devices.serialReceive(2), 'FIFO off: one byte');
  assert.is(u.in(RBR), 1);
  u.out(FCR, 0x01);
  for (let i = 0; i < 16; i++) assert.ok(h.devices.serialReceive(i), `byte ${i}`);
  assert.not.ok(h.devices.serialReceive(16), 'full');
  assert.is(u.in(RBR), 0);
  assert.ok(h.devices.serialReceive(16), 'room again after a read');
  u.out(FCR, 0x03); // clear RX
  assert.is(u.in(LSR) & LSR_DR, 0);
});

test('serial: loopback feeds THR to RBR and mirrors MCR on MSR', async () => {
  const h = await createHarness();
  const u = uart(h);
  u.out(FCR, 0x01);
  u.out(MCR, MCR_LOOP);
  assert.is(u.in(MSR), 0x0b, 'DCTS, DDSR and DDCD: the host lines dropped on entering loopback');
  u.out(MCR, MCR_LOOP | 0x0f);
  assert.is(u.in(MSR), 0xf0 | 0x0b);
  u.out(MCR, MCR_LOOP | 0x0b); // OUT1 off: trailing edge of RI
  assert.is(u.in(MSR) & 0x4f, 0x04);
  u.out(RBR, 0x5a);
  assert.equal(h.console, [], 'loopback does not transmit');
  assert.is(u.in(RBR), 0x5a);
  assert.not.ok(h.devices.serialReceive(0x41), 'external input is disconnected in loopback');
  u.out(MCR, 0x0b);
  assert.is(u.in(MSR) & 0xf0, 0xb0, 'host lines: DCD, DSR, CTS');
  assert.ok(h.devices.serialReceive(0x41));
});

test('serial: IIR reports line status, then data, then THRE, then modem status', async () => {
  const h = await createHarness();
  const u = uart(h);
  u.out(FCR, 0x01); // trigger level 1
  u.out(MCR, MCR_LOOP);
  u.in(MSR);
  for (let i = 0; i < 17; i++) u.out(RBR, i); // one more than fits: overrun
  u.out(MCR, MCR_LOOP | 0x02); // RTS: CTS changes
  u.out(IER, IER_RDI | IER_THRI | IER_RLSI | IER_MSI);
  assert.is(h.level(GSI), true);
  assert.is(u.in(IIR) & 0x0f, IIR_RLS);
  assert.is(u.in(LSR), LSR_DR | LSR_OE | LSR_THRE | LSR_TEMT);
  assert.is(u.in(IIR) & 0x0f, IIR_RDA);
  for (let i = 0; i < 16; i++) assert.is(u.in(RBR), i);
  assert.is(u.in(IIR) & 0x0f, IIR_THRE);
  assert.is(u.in(IIR) & 0x0f, IIR_MSI);
  assert.is(u.in(MSR) & 0x0f, 0x01);
  assert.is(u.in(IIR) & 0x0f, IIR_NONE);
  assert.is(h.level(GSI), false);
});

test('serial: the IRQ line only changes on edges of the interrupt condition', async () => {
  const h = await createHarness();
  const u = uart(h);
  u.out(IER, IER_THRI);
  u.out(RBR, 1);
  u.out(RBR, 2);
  u.in(IIR);
  u.out(IER, 0);
  assert.equal(h.irqLog, [[GSI, true], [GSI, false]]);
});

test('serial: scratch register and wider accesses', async () => {
  const h = await createHarness();
  const u = uart(h);
  u.out(SCR, 0xa5);
  assert.is(u.in(SCR), 0xa5);
  assert.is(h.devices.ioRead(COM1, 2), 0xffff, 'only byte accesses are decoded');
  h.devices.ioWrite(COM1, 4, 0x41414141);
  assert.equal(h.console, []);
});

type Op =
  | { kind: 'read'; reg: number }
  | { kind: 'write'; reg: number; value: number }
  | { kind: 'receive'; value: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('read' as const), reg: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('write' as const), reg: fc.integer({ min: 0, max: 7 }), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('receive' as const), value: fc.integer({ min: 0, max: 255 }) }),
);

test('serial: random register traffic never traps and keeps IIR/LSR/IRQ consistent', async () => {
  const h = await createHarness();
  const u = uart(h);
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 200, size: 'max' }), async (ops) => {
      for (const op of ops) {
        if (op.kind === 'receive') {
          h.devices.serialReceive(op.value);
        } else if (op.kind === 'write') {
          u.out(op.reg, op.value);
        } else if (op.reg === IIR) {
          const levelBefore = h.level(GSI);
          const iir = u.in(IIR);
          assert.is(iir & 0x30, 0, 'IIR bits 5:4 read 0');
          assert.ok((iir & 0xc0) === 0 || (iir & 0xc0) === 0xc0, 'FIFO bits both set or both clear');
          assert.ok([IIR_NONE, IIR_RLS, IIR_RDA, IIR_TIMEOUT, IIR_THRE, IIR_MSI].includes(iir & 0x0f), `IIR id ${iir}`);
          assert.is(levelBefore, (iir & IIR_NONE) === 0, 'IRQ line asserted exactly when IIR shows an interrupt');
        } else if (op.reg === LSR) {
          const lsr = u.in(LSR);
          assert.is(lsr & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT, 'transmitter always empty');
          assert.is(lsr & 0x9c, 0, 'no parity/framing/break errors');
        } else {
          const v = u.in(op.reg);
          assert.ok(v >= 0 && v <= 0xff);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('serial: host bytes come out of RBR in order, never more than 16 pending', async () => {
  const h = await createHarness();
  const u = uart(h);
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constant(-1)), { maxLength: 100, size: 'max' }), async (script) => {
      u.out(FCR, 0x03); // FIFO on and emptied
      const accepted: number[] = [];
      const read: number[] = [];
      for (const step of script) {
        if (step >= 0) {
          if (h.devices.serialReceive(step)) accepted.push(step);
          else assert.is(accepted.length - read.length, 16);
        } else if (u.in(LSR) & LSR_DR) {
          read.push(u.in(RBR));
        }
      }
      while (u.in(LSR) & LSR_DR) read.push(u.in(RBR));
      assert.equal(read, accepted);
    }),
    { numRuns: 200 },
  );
});

test.run();
