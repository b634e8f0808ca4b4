import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHarness, randomByte, type Harness } from './device-harness.js';
import {
  addChain, availEvent, createRngHarness, FEATURE, kick, mem, publish, queueLayout, readUsed, REG, setAvailFlags,
  setupDevice, setUsedEvent, VIRTIO_BASE, VIRTIO_GSI, writeDesc, DESC_F, type Queue,
} from './virtio-rings.js';

const RING = 0x1_0000;
const BUFFER = 0x4_0000;
const INDIRECT = 0x3_0000;

/** A live rng with one queue of `size` entries. */
async function rng(features = 0n, size = 16): Promise<{ h: Harness; q: Queue }> {
  const h = await createRngHarness();
  const dev = setupDevice(h, VIRTIO_BASE, [queueLayout(RING, size)], features);
  return { h, q: dev.queues[0] };
}

function bytes(h: Harness, addr: number, len: number): number[] {
  return [...new Uint8Array(h.devices.memory.buffer, addr, len)];
}

const filled = (addr: number, len: number) => Array.from({ length: len }, (_, i) => randomByte(addr + i));

test('virtio-rng: fills every writable segment of a chain and returns the written length', async () => {
  const { h, q } = await rng();
  const head = addChain(q, [
    { addr: BUFFER, len: 10, write: false },
    { addr: BUFFER + 0x100, len: 5, write: true },
    { addr: BUFFER + 0x200, len: 3000, write: true },
  ]);
  kick(q);
  assert.equal(readUsed(q), [{ id: head, len: 3005 }]);
  assert.equal(h.fills, [[BUFFER + 0x100, 5], [BUFFER + 0x200, 3000]]);
  assert.equal(bytes(h, BUFFER, 10), new Array(10).fill(0), 'the device-readable segment is left alone');
  assert.equal(bytes(h, BUFFER + 0x200, 3000), filled(BUFFER + 0x200, 3000));
  assert.is(bytes(h, BUFFER + 0x200 + 3000, 1)[0], 0, 'nothing past the segment');
});

test('virtio-rng: serves every available chain of a kick, in order', async () => {
  const { h, q } = await rng();
  const heads = [0, 1, 2, 3].map((i) => addChain(q, [{ addr: BUFFER + 0x100 * i, len: 16 + i, write: true }]));
  kick(q);
  assert.equal(readUsed(q), heads.map((id, i) => ({ id, len: 16 + i })));
  assert.equal(h.pulses, [VIRTIO_GSI], 'one interrupt for the batch');
});

test('virtio-rng: indirect descriptor tables', async () => {
  const { h, q } = await rng(FEATURE.INDIRECT_DESC);
  const head = addChain(q, [
    { addr: BUFFER, len: 32, write: true },
    { addr: BUFFER + 0x1000, len: 64, write: true },
  ], { indirect: INDIRECT });
  kick(q);
  assert.equal(readUsed(q), [{ id: head, len: 96 }]);
  assert.equal(h.fills, [[BUFFER, 32], [BUFFER + 0x1000, 64]]);
  assert.equal(bytes(h, BUFFER + 0x1000, 64), filled(BUFFER + 0x1000, 64));
});

test('virtio-rng: a direct chain can lead into an indirect table', async () => {
  const { h, q } = await rng(FEATURE.INDIRECT_DESC);
  writeDesc(h, INDIRECT, 0, { addr: BUFFER + 0x800, len: 8, flags: DESC_F.WRITE, next: 0 });
  writeDesc(h, q.desc, 0, { addr: BUFFER, len: 4, flags: DESC_F.WRITE | DESC_F.NEXT, next: 1 });
  writeDesc(h, q.desc, 1, { addr: INDIRECT, len: 16, flags: DESC_F.INDIRECT, next: 0 });
  publish(q, [0]);
  kick(q);
  assert.equal(readUsed(q), [{ id: 0, len: 12 }]);
  assert.equal(h.fills, [[BUFFER, 4], [BUFFER + 0x800, 8]]);
});

test('virtio-rng: a chain as long as the queue is served; zero-length segments are not filled', async () => {
  const { h, q } = await rng(0n, 8);
  const segments = Array.from({ length: 8 }, (_, i) => ({ addr: BUFFER + 0x10 * i, len: i % 2 ? 0 : 4, write: true }));
  addChain(q, segments);
  kick(q);
  assert.equal(readUsed(q), [{ id: 0, len: 16 }]);
  assert.is(h.fills.length, 4);
});

test('virtio-rng: the ioeventfd export serves like a QueueNotify write', async () => {
  const { h, q } = await rng();
  addChain(q, [{ addr: BUFFER, len: 8, write: true }]);
  kick(q, 'ioeventfd');
  assert.equal(readUsed(q), [{ id: 0, len: 8 }]);
  assert.equal(h.pulses, [VIRTIO_GSI]);
});

test('virtio-rng: without EVENT_IDX, avail.flags NO_INTERRUPT suppresses interrupts', async () => {
  const { h, q } = await rng();
  setAvailFlags(q, 1);
  addChain(q, [{ addr: BUFFER, len: 8, write: true }]);
  kick(q);
  assert.is(readUsed(q).length, 1);
  assert.equal(h.pulses, []);
  setAvailFlags(q, 0);
  addChain(q, [{ addr: BUFFER, len: 8, write: true }]);
  kick(q);
  assert.equal(h.pulses, [VIRTIO_GSI]);
  kick(q);
  assert.equal(h.pulses, [VIRTIO_GSI], 'no interrupt for a kick that used nothing');
});

test('virtio-rng: with EVENT_IDX, interrupts follow used_event and avail_event tracks the ring', async () => {
  const { h, q } = await rng(FEATURE.EVENT_IDX);
  setAvailFlags(q, 1); // ignored with EVENT_IDX
  setUsedEvent(q, 2); // interrupt once used.idx passes 2, i.e. after the third entry
  const add = () => addChain(q, [{ addr: BUFFER, len: 8, write: true }]);
  add();
  kick(q);
  assert.equal(h.pulses, [], 'used.idx 1 has not passed used_event 2');
  assert.is(availEvent(q), 1, 'the device asks for a kick at the next buffer');
  add();
  add();
  kick(q);
  assert.equal(h.pulses, [VIRTIO_GSI], 'used.idx went 1 -> 3, past 2');
  assert.is(availEvent(q), 3);
  add();
  kick(q);
  assert.equal(h.pulses, [VIRTIO_GSI], 'used_event 2 already passed');
  setUsedEvent(q, 4);
  add();
  kick(q);
  assert.equal(h.pulses, [VIRTIO_GSI, VIRTIO_GSI]);
  assert.is(readUsed(q).length, 5);
});

test('virtio-rng: the rings wrap: avail and used indices past 65535', async () => {
  const { h, q } = await rng(FEATURE.EVENT_IDX, 256);
  let served = 0;
  for (let round = 0; round < 260; round++) {
    for (let i = 0; i < 256; i++) addChain(q, [{ addr: BUFFER + 16 * i, len: 1, write: true }]);
    setUsedEvent(q, (q.availIdx - 1) & 0xffff);
    kick(q);
    const used = readUsed(q);
    assert.is(used.length, 256);
    served += used.length;
  }
  assert.is(served, 260 * 256);
  assert.is(mem(h).getUint16(q.used + 2, true), (260 * 256) & 0xffff);
  assert.is(h.pulses.length, 260);
  assert.is(q.device.read(REG.STATUS), 0x0f);
});

/** Copies guest RAM [0, bytes) of `from` into `to`: a snapshot holds it next to the device state. */
function copyRam(from: Harness, to: Harness, bytes: number): void {
  new Uint8Array(to.devices.memory.buffer, 0, bytes).set(new Uint8Array(from.devices.memory.buffer, 0, bytes));
}

test('virtio-rng: a snapshot of a live device restores into a VM with the same devices and carries on', async () => {
  const { h: a, q } = await rng(FEATURE.EVENT_IDX | FEATURE.INDIRECT_DESC);
  for (let i = 0; i < 3; i++) addChain(q, [{ addr: BUFFER + 0x100 * i, len: 16, write: true }]);
  kick(q);
  readUsed(q);
  addChain(q, [{ addr: BUFFER + 0x1000, len: 8, write: true }]); // available, not yet kicked
  const blob = a.devices.saveState();
  const b = await createRngHarness();
  copyRam(a, b, 1 << 20);
  b.devices.restoreState(blob);
  assert.equal(b.devices.saveState(), blob, 'saving again gives the same blob');
  assert.is(Number(b.devices.mmioRead(VIRTIO_BASE + BigInt(REG.STATUS), 4)), 0x0f);
  assert.is(Number(b.devices.mmioRead(VIRTIO_BASE + BigInt(REG.INTERRUPT_STATUS), 4)), 1, 'unacknowledged interrupt kept');
  // Both serve the pending chain alike: same used entry, same fills, same interrupt decision.
  setUsedEvent(q, 3);
  copyRam(a, b, 1 << 20);
  a.devices.virtioNotify(0, 0);
  b.devices.virtioNotify(0, 0);
  assert.equal(b.fills, a.fills.slice(-1));
  assert.equal(b.pulses, [VIRTIO_GSI]);
  assert.equal(bytes(b, 0, 1 << 20), bytes(a, 0, 1 << 20));
});

test('virtio-rng: the blob has one "VIO" + index section per virtio device', async () => {
  const h = await createHarness();
  h.devices.setGuestRamBytes(1 << 20);
  h.devices.addVirtioRng(VIRTIO_BASE, 5);
  h.devices.addVirtioRng(VIRTIO_BASE + 0x200n, 6);
  const blob = h.devices.saveState();
  assert.is(new DataView(blob.buffer).getUint16(6, true), 5, 'three legacy sections, two virtio');
  const text = Buffer.from(blob).toString('latin1');
  assert.ok(text.includes('VIO0') && text.includes('VIO1'));
});

test('virtio-rng: a restore needs the same virtio devices, and a refused one changes nothing', async () => {
  const { h: a } = await rng();
  const blob = a.devices.saveState();
  const plain = await createHarness();
  assert.throws(() => plain.devices.restoreState(blob), /section "VIO0".*device this machine does not have/);
  const two = await createHarness();
  two.devices.setGuestRamBytes(16 << 20);
  two.devices.addVirtioRng(VIRTIO_BASE, 5);
  two.devices.addVirtioRng(VIRTIO_BASE + 0x200n, 6);
  assert.throws(() => two.devices.restoreState(blob), /lacks the section/);
  // A live rng refusing a blob whose queue lies outside its (smaller) guest RAM keeps its own state.
  const small = await createRngHarness(RING);
  setupDevice(small, VIRTIO_BASE, [queueLayout(0x1000, 8)]);
  const before = small.devices.saveState();
  assert.throws(() => small.devices.restoreState(blob), /section "VIO0".*values the device cannot hold/);
  assert.equal(small.devices.saveState(), before);
  // Same when the virtio section is fine but a later fault refuses the blob.
  const truncated = blob.subarray(0, blob.length - 1);
  const other = await createRngHarness();
  setupDevice(other, VIRTIO_BASE, [queueLayout(0x1000, 8)]);
  const otherBefore = other.devices.saveState();
  assert.throws(() => other.devices.restoreState(truncated), /truncated|wrong length/);
  assert.equal(other.devices.saveState(), otherBefore);
});

test.run();
