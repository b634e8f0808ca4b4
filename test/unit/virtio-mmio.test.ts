import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHarness } from './device-harness.js';
import {
  addChain, createRngHarness, device, FEATURE, INTERRUPT, kick, offeredFeatures, queueLayout, readUsed, REG,
  setupDevice, setupQueue, STATUS, VIRTIO_BASE, VIRTIO_GSI, writeDriverFeatures, type VirtioTestDevice,
} from './virtio-rings.js';

const RING = 0x1_0000;
const BUFFER = 0x4_0000;
const UP_TO_DRIVER = STATUS.ACKNOWLEDGE | STATUS.DRIVER;

/** A device taken as far as ACKNOWLEDGE | DRIVER. */
async function probed(ramBytes?: number): Promise<VirtioTestDevice> {
  const h = await createRngHarness(ramBytes);
  const dev = device(h, VIRTIO_BASE);
  dev.write(REG.STATUS, STATUS.ACKNOWLEDGE);
  dev.write(REG.STATUS, UP_TO_DRIVER);
  return dev;
}

/** Negotiates VERSION_1 | `extra` and sets FEATURES_OK; returns the status read back. */
function negotiate(dev: VirtioTestDevice, extra = 0n): number {
  writeDriverFeatures(dev, FEATURE.VERSION_1 | extra);
  dev.write(REG.STATUS, UP_TO_DRIVER | STATUS.FEATURES_OK);
  return dev.read(REG.STATUS);
}

test('virtio-mmio: identification registers of a virtio-rng', async () => {
  const dev = device(await createRngHarness(), VIRTIO_BASE);
  assert.is(dev.read(REG.MAGIC), 0x74726976, '"virt"');
  assert.is(dev.read(REG.VERSION), 2);
  assert.is(dev.read(REG.DEVICE_ID), 4);
  assert.is(dev.read(REG.VENDOR_ID), 0x4f4b4148, '"HAKO"');
  assert.is(dev.read(REG.STATUS), 0);
  assert.is(dev.read(REG.CONFIG_GENERATION), 0);
  assert.is(dev.read(REG.CONFIG), 0, 'virtio-rng has no config space');
  assert.is(dev.read(0xb0), 0xffff_ffff, 'no shared memory region');
});

test('virtio-mmio: feature words by selector', async () => {
  const dev = device(await createRngHarness(), VIRTIO_BASE);
  assert.is(offeredFeatures(dev), FEATURE.VERSION_1 | FEATURE.EVENT_IDX | FEATURE.INDIRECT_DESC);
  dev.write(REG.DEVICE_FEATURES_SEL, 0);
  assert.is(dev.read(REG.DEVICE_FEATURES), 0x3000_0000);
  dev.write(REG.DEVICE_FEATURES_SEL, 1);
  assert.is(dev.read(REG.DEVICE_FEATURES), 1);
  dev.write(REG.DEVICE_FEATURES_SEL, 2);
  assert.is(dev.read(REG.DEVICE_FEATURES), 0, 'no feature bits above 63');
});

test('virtio-mmio: only 32-bit accesses reach the registers below the config space', async () => {
  const h = await createRngHarness();
  assert.is(h.devices.mmioRead(VIRTIO_BASE, 2), 0n);
  assert.is(h.devices.mmioRead(VIRTIO_BASE, 8), 0n);
  assert.is(h.devices.mmioRead(VIRTIO_BASE, 4), 0x74726976n);
  h.devices.mmioWrite(VIRTIO_BASE + BigInt(REG.STATUS), 1, 1n);
  assert.is(h.devices.mmioRead(VIRTIO_BASE + BigInt(REG.STATUS), 4), 0n, 'byte write ignored');
  assert.is(h.devices.mmioRead(VIRTIO_BASE + 0x200n, 4), 0n, 'past the 0x200-byte window nothing answers');
});

test('virtio-mmio: FEATURES_OK is refused without VERSION_1 or with bits the device did not offer', async () => {
  let dev = await probed();
  writeDriverFeatures(dev, FEATURE.EVENT_IDX);
  dev.write(REG.STATUS, UP_TO_DRIVER | STATUS.FEATURES_OK);
  assert.is(dev.read(REG.STATUS), UP_TO_DRIVER, 'legacy driver (no VERSION_1) refused');
  for (const bad of [1n, 1n << 33n, 1n << 63n]) {
    dev = await probed();
    assert.is(negotiate(dev, bad), UP_TO_DRIVER, `unoffered bit 0x${bad.toString(16)} refused`);
  }
  dev = await probed();
  assert.is(negotiate(dev, FEATURE.EVENT_IDX | FEATURE.INDIRECT_DESC), UP_TO_DRIVER | STATUS.FEATURES_OK);
});

test('virtio-mmio: features are frozen at FEATURES_OK and DRIVER_OK needs FEATURES_OK', async () => {
  let dev = await probed();
  dev.write(REG.STATUS, UP_TO_DRIVER | STATUS.DRIVER_OK);
  assert.is(dev.read(REG.STATUS), UP_TO_DRIVER, 'DRIVER_OK without FEATURES_OK refused');
  dev = await probed();
  negotiate(dev);
  // A bit flipped after FEATURES_OK must not take effect: INDIRECT_DESC stays off.
  writeDriverFeatures(dev, FEATURE.VERSION_1 | FEATURE.INDIRECT_DESC);
  const q = setupQueue(dev, 0, queueLayout(RING, 8));
  dev.write(REG.STATUS, UP_TO_DRIVER | STATUS.FEATURES_OK | STATUS.DRIVER_OK);
  assert.is(dev.read(REG.STATUS), 0x0f);
  addChain(q, [{ addr: BUFFER, len: 16, write: true }], { indirect: BUFFER + 0x1000 });
  kick(q);
  assert.is(dev.read(REG.STATUS) & STATUS.NEEDS_RESET, STATUS.NEEDS_RESET, 'indirect not negotiated');
  assert.is(dev.h.devices.virtioFailure(0), 7, 'QueueError.INDIRECT_NOT_NEGOTIATED');
});

test('virtio-mmio: queue registers: QueueNumMax, ready, and changes ignored while ready', async () => {
  const dev = await probed();
  negotiate(dev);
  dev.write(REG.QUEUE_SEL, 0);
  assert.is(dev.read(REG.QUEUE_NUM_MAX), 256);
  assert.is(dev.read(REG.QUEUE_READY), 0);
  dev.write(REG.QUEUE_SEL, 1);
  assert.is(dev.read(REG.QUEUE_NUM_MAX), 0, 'virtio-rng has one queue');
  dev.write(REG.QUEUE_READY, 1);
  assert.is(dev.read(REG.QUEUE_READY), 0);
  const q = setupQueue(dev, 0, queueLayout(RING, 16));
  assert.is(dev.read(REG.QUEUE_READY), 1);
  dev.write(REG.QUEUE_NUM, 4);
  dev.write(REG.QUEUE_DESC_LOW, 0x9000);
  dev.write(REG.STATUS, 0x0f);
  // The queue still works with its original size and table: 16 chains in one go.
  for (let i = 0; i < 16; i++) addChain(q, [{ addr: BUFFER + 64 * i, len: 64, write: true }]);
  kick(q);
  assert.is(readUsed(q).length, 16);
  assert.is(dev.read(REG.STATUS), 0x0f);
  dev.write(REG.QUEUE_READY, 0);
  assert.is(dev.read(REG.QUEUE_READY), 0, 'a queue can be disabled');
});

test('virtio-mmio: a queue of bad size, misaligned or outside guest RAM is not enabled and the device needs reset', async () => {
  const ram = 1 << 20;
  const cases: [string, (dev: VirtioTestDevice) => void][] = [
    ['size 0', (d) => d.write(REG.QUEUE_NUM, 0)],
    ['size not a power of two', (d) => d.write(REG.QUEUE_NUM, 12)],
    ['size above QueueNumMax', (d) => d.write(REG.QUEUE_NUM, 512)],
    ['descriptor table not 16-byte aligned', (d) => d.write(REG.QUEUE_DESC_LOW, RING + 8)],
    ['avail ring odd', (d) => d.write(REG.QUEUE_DRIVER_LOW, RING + 0x1001)],
    ['used ring not 4-byte aligned', (d) => d.write(REG.QUEUE_DEVICE_LOW, RING + 0x2002)],
    ['used ring past the end of RAM', (d) => d.write(REG.QUEUE_DEVICE_LOW, ram - 8)],
    ['descriptor table above 4 GiB', (d) => d.write(REG.QUEUE_DESC_HIGH, 1)],
    ['avail ring at the module data (3 GiB)', (d) => d.write(REG.QUEUE_DRIVER_LOW, 0xc000_0000)],
  ];
  for (const [what, spoil] of cases) {
    const dev = await probed(ram);
    negotiate(dev);
    dev.write(REG.QUEUE_SEL, 0);
    dev.write(REG.QUEUE_NUM, 8);
    dev.write(REG.QUEUE_DESC_LOW, RING);
    dev.write(REG.QUEUE_DRIVER_LOW, RING + 0x1000);
    dev.write(REG.QUEUE_DEVICE_LOW, RING + 0x2000);
    spoil(dev);
    dev.write(REG.QUEUE_READY, 1);
    assert.is(dev.read(REG.QUEUE_READY), 0, what);
    assert.is(dev.read(REG.STATUS), UP_TO_DRIVER | STATUS.FEATURES_OK | STATUS.NEEDS_RESET, what);
    assert.is(dev.h.devices.virtioFailure(0), 12, `${what}: QueueError.INVALID_QUEUE_CONFIG`);
    assert.equal(dev.h.pulses, [], `${what}: no interrupt before DRIVER_OK`);
  }
});

test('virtio-mmio: InterruptStatus shows a used-buffer interrupt until acknowledged', async () => {
  const h = await createRngHarness();
  const dev = setupDevice(h, VIRTIO_BASE, [queueLayout(RING, 8)]);
  addChain(dev.queues[0], [{ addr: BUFFER, len: 8, write: true }]);
  kick(dev.queues[0]);
  assert.equal(h.pulses, [VIRTIO_GSI]);
  assert.is(dev.read(REG.INTERRUPT_STATUS), INTERRUPT.VRING);
  dev.write(REG.INTERRUPT_ACK, INTERRUPT.CONFIG);
  assert.is(dev.read(REG.INTERRUPT_STATUS), INTERRUPT.VRING, 'acknowledging another bit leaves it');
  dev.write(REG.INTERRUPT_ACK, INTERRUPT.VRING);
  assert.is(dev.read(REG.INTERRUPT_STATUS), 0);
  assert.equal(h.irqLog, [], 'virtio interrupts are pulses, not levels');
});

test('virtio-mmio: DEVICE_NEEDS_RESET after DRIVER_OK raises a config interrupt, and kicks are ignored until reset', async () => {
  const h = await createRngHarness();
  const dev = setupDevice(h, VIRTIO_BASE, [queueLayout(RING, 8)]);
  const q = dev.queues[0];
  addChain(q, [{ addr: 0x7fff_0000, len: 8, write: true }]);
  kick(q);
  assert.is(dev.read(REG.STATUS), 0x0f | STATUS.NEEDS_RESET);
  assert.is(dev.read(REG.INTERRUPT_STATUS), INTERRUPT.CONFIG);
  assert.equal(h.pulses, [VIRTIO_GSI]);
  assert.is(h.devices.virtioFailure(0), 5, 'QueueError.ADDRESS_OUT_OF_RANGE');
  addChain(q, [{ addr: BUFFER, len: 8, write: true }]);
  kick(q);
  kick(q, 'ioeventfd');
  assert.equal(readUsed(q), []);
  assert.equal(h.fills, []);
});

test('virtio-mmio: writing status 0 resets the device; it can then be set up again', async () => {
  const h = await createRngHarness();
  let dev = setupDevice(h, VIRTIO_BASE, [queueLayout(RING, 8)], FEATURE.EVENT_IDX);
  addChain(dev.queues[0], [{ addr: BUFFER, len: 8, write: true }]);
  kick(dev.queues[0]);
  dev.write(REG.STATUS, 0);
  assert.is(dev.read(REG.STATUS), 0);
  assert.is(dev.read(REG.INTERRUPT_STATUS), 0);
  dev.write(REG.QUEUE_SEL, 0);
  assert.is(dev.read(REG.QUEUE_READY), 0);
  assert.is(h.devices.virtioFailure(0), 0);
  const fills = h.fills.length;
  kick(dev.queues[0]);
  assert.is(h.fills.length, fills, 'a reset device ignores kicks');
  // The driver starts over with fresh rings at another address: indices restart at 0.
  dev = setupDevice(h, VIRTIO_BASE, [queueLayout(RING + 0x8000, 8)]);
  addChain(dev.queues[0], [{ addr: BUFFER, len: 4, write: true }]);
  kick(dev.queues[0]);
  assert.equal(readUsed(dev.queues[0]), [{ id: 0, len: 4 }]);
});

test('virtio-mmio: kicks before DRIVER_OK, of missing queues and of unknown devices are ignored', async () => {
  const d = await probed();
  const h = d.h;
  negotiate(d);
  const q = setupQueue(d, 0, queueLayout(RING, 8));
  addChain(q, [{ addr: BUFFER, len: 8, write: true }]);
  kick(q);
  h.devices.virtioNotify(0, 0);
  assert.equal(h.fills, [], 'not live before DRIVER_OK');
  d.write(REG.STATUS, 0x0f);
  d.write(REG.QUEUE_NOTIFY, 1);
  h.devices.virtioNotify(0, 7);
  h.devices.virtioNotify(3, 0);
  assert.equal(h.fills, []);
  kick(q);
  assert.equal(h.fills, [[BUFFER, 8]]);
});

test('virtio-mmio: devices are numbered in the order added, each in its own window', async () => {
  const h = await createHarness();
  h.devices.setGuestRamBytes(1 << 20);
  assert.is(h.devices.addVirtioRng(VIRTIO_BASE, 5), 0);
  assert.is(h.devices.addVirtioRng(VIRTIO_BASE + 0x200n, 6), 1);
  assert.throws(() => h.devices.addVirtioRng(VIRTIO_BASE + 0x100n, 7), /overlaps/);
  const second = setupDevice(h, VIRTIO_BASE + 0x200n, [queueLayout(RING, 8)]);
  addChain(second.queues[0], [{ addr: BUFFER, len: 8, write: true }]);
  kick(second.queues[0], 'ioeventfd', 1);
  assert.equal(h.pulses, [6]);
  assert.is(device(h, VIRTIO_BASE).read(REG.STATUS), 0, 'the first device was not touched');
});

test.run();
