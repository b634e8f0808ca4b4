import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createHarness, type Harness } from './device-harness.js';

const DATA = 0x60;
const STATUS = 0x64;
const STR_OBF = 0x01, STR_IBF = 0x02, STR_SYS = 0x04, STR_CMD = 0x08, STR_AUXDATA = 0x20, STR_TIMEOUT = 0x40;
const KBD_GSI = 1;
const AUX_GSI = 12;

/** i8042_command(): command byte, parameters, then poll OBF for each result byte (Linux gives up after 10000 polls). */
function command(h: Harness, cmd: number, params: number[] = [], results = 0): number[] | 'timeout' {
  assert.is(h.inb(STATUS) & STR_IBF, 0, 'input buffer empty before a command');
  h.outb(STATUS, cmd);
  for (const p of params) h.outb(DATA, p);
  const out: number[] = [];
  for (let i = 0; i < results; i++) {
    if (!(h.inb(STATUS) & STR_OBF)) return 'timeout';
    out.push(h.inb(DATA));
  }
  return out;
}

/** i8042_flush(): drain the output buffer (Linux fails the probe after 16 bytes). */
function flush(h: Harness): number {
  let n = 0;
  while (h.inb(STATUS) & STR_OBF && n < 16) {
    h.inb(DATA);
    n++;
  }
  return n;
}

test('i8042: status after power-on: buffers empty, system flag set', async () => {
  const h = await createHarness();
  const status = h.inb(STATUS);
  assert.is(status & (STR_OBF | STR_IBF), 0);
  assert.ok(status & STR_SYS);
  assert.is(status & STR_CMD, 0);
});

test('i8042: Linux reboot=k pulses reset with 0xFE after waiting for an empty input buffer', async () => {
  const h = await createHarness();
  for (let i = 0; i < 10; i++) {
    // kb_wait()
    let spins = 0;
    while (h.inb(STATUS) & STR_IBF) assert.ok(++spins < 0x10000);
    h.outb(STATUS, 0xfe);
  }
  assert.is(h.resets, 10, 'every pulse is reported; the host stops the VM at the first');
  assert.ok(h.inb(STATUS) & STR_CMD);
});

test('i8042: only pulse commands with bit 0 clear and output-port writes with bit 0 clear reset', async () => {
  const h = await createHarness();
  h.outb(STATUS, 0xff); // pulse nothing
  h.outb(STATUS, 0xd1);
  h.outb(DATA, 0x03); // reset line high, A20 on
  assert.is(h.resets, 0);
  assert.equal(command(h, 0xd0, [], 1), [0x03]);
  h.outb(STATUS, 0xf0);
  assert.is(h.resets, 1);
  h.outb(STATUS, 0xd1);
  h.outb(DATA, 0x02);
  assert.is(h.resets, 2);
});

test('i8042: Linux probe: flush, self test, stable CTR read, CTR write, no MUX, AUX port present', async () => {
  const h = await createHarness();
  assert.is(flush(h), 0);
  assert.equal(command(h, 0xaa, [], 1), [0x55]);
  const ctr1 = command(h, 0x20, [], 1);
  const ctr2 = command(h, 0x20, [], 1);
  assert.equal(ctr1, ctr2);
  assert.equal(ctr1, [0x45], 'keyboard interrupt, system flag, translation');
  const ctr = (ctr1 as number[])[0]! | 0x10; // disable the keyboard interface
  assert.equal(command(h, 0x60, [ctr & ~0x01]), []);
  assert.equal(command(h, 0x20, [], 1), [0x54]);
  // i8042_set_mux_mode(true): the third loopback byte must come back changed for a MUX.
  assert.equal(command(h, 0xd3, [0xf0], 1), [0xf0]);
  assert.equal(command(h, 0xd3, [0x56], 1), [0x56]);
  assert.equal(command(h, 0xd3, [0xa4], 1), [0xa4], 'no active multiplexer');
  // i8042_check_aux(): loopback answers on the AUX channel.
  h.outb(STATUS, 0xd3);
  h.outb(DATA, 0x5a);
  assert.is(h.inb(STATUS) & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
  assert.is(h.inb(DATA), 0x5a);
  assert.equal(command(h, 0xa7), []);
  assert.ok((command(h, 0x20, [], 1) as number[])[0]! & 0x20, 'AUX disabled');
  assert.equal(command(h, 0xa8), []);
  assert.not.ok((command(h, 0x20, [], 1) as number[])[0]! & 0x20, 'AUX enabled');
  assert.equal(command(h, 0xa9, [], 1), [0x00]);
  assert.equal(command(h, 0xab, [], 1), [0x00]);
  assert.is(h.resets, 0);
});

test('i8042: output raises IRQ 1 or 12 per channel when enabled in the CTR, reading data lowers it', async () => {
  const h = await createHarness();
  h.outb(STATUS, 0x20);
  assert.is(h.level(KBD_GSI), true, 'controller replies use the keyboard channel');
  h.inb(DATA);
  assert.is(h.level(KBD_GSI), false);
  command(h, 0x60, [0x47]); // both interrupts on
  h.outb(STATUS, 0xd3);
  h.outb(DATA, 0xa5);
  assert.is(h.level(AUX_GSI), true, 'AUX IRQ test of i8042_check_aux()');
  assert.is(h.level(KBD_GSI), false);
  assert.is(h.inb(DATA), 0xa5);
  assert.is(h.level(AUX_GSI), false);
  command(h, 0x60, [0x44]); // both off
  h.outb(STATUS, 0xd2);
  h.outb(DATA, 0x1c);
  assert.is(h.level(KBD_GSI), false);
  assert.is(h.inb(DATA), 0x1c);
});

test('i8042: bytes for the absent keyboard and mouse are answered 0xFE with the timeout bit', async () => {
  const h = await createHarness();
  h.outb(DATA, 0xff); // keyboard reset
  assert.is(h.inb(STATUS) & (STR_OBF | STR_AUXDATA | STR_TIMEOUT), STR_OBF | STR_TIMEOUT);
  assert.is(h.inb(DATA), 0xfe);
  h.outb(STATUS, 0xd4);
  h.outb(DATA, 0xf2); // mouse get ID
  assert.is(h.inb(STATUS) & (STR_OBF | STR_AUXDATA | STR_TIMEOUT), STR_OBF | STR_AUXDATA | STR_TIMEOUT);
  assert.is(h.inb(DATA), 0xfe);
  assert.is(h.inb(STATUS) & (STR_OBF | STR_TIMEOUT), 0);
});

test('i8042: reading an empty output buffer repeats the last byte; ports 0x61-0x63 are not decoded', async () => {
  const h = await createHarness();
  command(h, 0xaa, [], 1);
  assert.is(h.inb(DATA), 0x55);
  for (const port of [0x61, 0x62, 0x63]) assert.is(h.inb(port), 0xff);
  assert.is(h.devices.ioRead(DATA, 2), 0xffff, 'only byte accesses are decoded');
});

test('i8042: random traffic never traps and OBF, IRQ lines and data reads stay consistent', async () => {
  const h = await createHarness();
  await fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(DATA, STATUS, 0x61), fc.boolean(), fc.integer({ min: 0, max: 255 })), { maxLength: 200, size: 'max' }),
      (ops) => {
        for (const [port, isWrite, value] of ops) {
          if (isWrite) {
            h.outb(port, value);
            continue;
          }
          const status = h.inb(STATUS);
          assert.is(status & STR_IBF, 0);
          if (!(status & STR_OBF)) assert.not.ok(h.level(KBD_GSI) || h.level(AUX_GSI), 'no IRQ without output');
          if (port === DATA) {
            h.inb(DATA);
            assert.is(h.inb(STATUS) & STR_OBF, 0, 'a data read empties the output buffer');
            assert.not.ok(h.level(KBD_GSI) || h.level(AUX_GSI));
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

test.run();
