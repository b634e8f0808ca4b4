import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createHarness } from './device-harness.js';

const UNCLAIMED_PORT = 0x2f8; // COM2: not emulated
const COM1 = 0x3f8;
const EXIT_PORT = 0xf4;

test('bus: unclaimed ports read all ones of the access size and ignore writes', async () => {
  const h = await createHarness();
  const { devices } = h;
  assert.is(devices.ioRead(UNCLAIMED_PORT, 1), 0xff);
  assert.is(devices.ioRead(UNCLAIMED_PORT, 2), 0xffff);
  assert.is(devices.ioRead(UNCLAIMED_PORT, 4), 0xffff_ffff);
  devices.ioWrite(0x80, 1, 0x42); // POST code port
  devices.ioWrite(0xffff, 4, 0xffff_ffff);
  assert.equal([h.console, h.exits, h.irqLog, h.resets], [[], [], [], 0]);
});

test('bus: port accesses of invalid size reach no device', async () => {
  const h = await createHarness();
  const { devices } = h;
  devices.ioWrite(COM1 + 7, 1, 0x12); // scratch register
  for (const size of [0, 3, 5, 8, 0xffff_ffff]) {
    devices.ioWrite(COM1 + 7, size, 0x34);
    devices.ioWrite(COM1, size, 0x41);
  }
  assert.is(devices.ioRead(COM1 + 7, 1), 0x12);
  assert.equal(h.console, []);
  assert.is(devices.ioRead(COM1 + 7, 3), 0xff_ffff, 'all ones, cut to the size');
  assert.is(devices.ioRead(COM1 + 7, 8), 0xffff_ffff);
  assert.is(devices.ioRead(COM1 + 7, 0), 0);
});

test('bus: an access that runs past the end of a window reaches no device', async () => {
  const h = await createHarness();
  h.devices.ioWrite(COM1 + 7, 1, 0x12);
  assert.is(h.devices.ioRead(COM1 + 7, 2), 0xffff);
  assert.is(h.devices.ioRead(COM1 + 6, 4), 0xffff_ffff);
  h.devices.ioWrite(COM1 + 7, 2, 0x3456);
  assert.is(h.devices.ioRead(COM1 + 7, 1), 0x12);
});

test('bus: unclaimed MMIO reads 0 for every size, at any address', async () => {
  const { devices } = await createHarness();
  for (const addr of [0n, 0xd000_0000n, 0xfec0_0000n, 0xffff_ffff_ffff_fff8n, 0xffff_ffff_ffff_ffffn]) {
    for (const size of [1, 2, 4, 8, 3, 16]) {
      assert.is(devices.mmioRead(addr, size), 0n);
      devices.mmioWrite(addr, size, 0xffff_ffff_ffff_ffffn);
    }
  }
});

test('bus: the exit port reports what the guest writes, at any size', async () => {
  const h = await createHarness();
  h.devices.ioWrite(EXIT_PORT, 1, 0);
  h.devices.ioWrite(EXIT_PORT, 4, 1);
  h.devices.ioWrite(EXIT_PORT, 2, 0x1234);
  h.devices.ioWrite(EXIT_PORT + 3, 1, 7);
  assert.equal(h.exits, [0, 1, 0x1234, 7]);
  assert.is(h.devices.ioRead(EXIT_PORT, 1), 0xff, 'write-only');
});

test('bus: random port and MMIO traffic never traps and reads fit the access size', async () => {
  const h = await createHarness();
  const { devices } = h;
  const port = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0x3f0, max: 0x3ff }), fc.integer({ min: 0x60, max: 0x74 }));
  const size = fc.oneof(fc.constantFrom(1, 2, 4), fc.integer({ min: 0, max: 16 }), fc.constant(0xffff_ffff));
  const op = fc.oneof(
    fc.record({ mmio: fc.constant(false), port, size, isWrite: fc.boolean(), value: fc.integer({ min: 0, max: 0xffff_ffff }) }),
    fc.record({ mmio: fc.constant(true), addr: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), size, isWrite: fc.boolean(), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200, size: 'max' }), (ops) => {
      for (const o of ops) {
        if (o.mmio) {
          if (o.isWrite) devices.mmioWrite(o.addr, o.size, o.value);
          else assert.is(devices.mmioRead(o.addr, o.size), 0n);
        } else if (o.isWrite) {
          devices.ioWrite(o.port, o.size, o.value);
        } else {
          const v = devices.ioRead(o.port, o.size);
          assert.ok(v >= 0 && v <= (o.size >= 4 ? 0xffff_ffff : 2 ** (8 * o.size) - 1), `read ${v} of size ${o.size}`);
        }
      }
    }),
    { numRuns: 500 },
  );
});

test.run();
