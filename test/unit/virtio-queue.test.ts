// The split virtqueue's checks of what the driver puts in the rings, through
// a virtio-rng (the simplest device that walks chains): every broken chain
// puts the device into DEVICE_NEEDS_RESET with the QueueError naming it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Harness } from './device-harness.js';
import {
  addChain, createRngHarness, DESC_F, FEATURE, kick, publish, queueLayout, readUsed, REG, setupDevice, STATUS,
  VIRTIO_BASE, writeDesc, type Descriptor, type Queue,
} from './virtio-rings.js';

const RAM = 1 << 20;
const RING = 0x1_0000;
const BUFFER = 0x4_0000;
const INDIRECT = 0x3_0000;
const { NEXT, WRITE, INDIRECT: IND } = DESC_F;

/** assembly/virtio/queue.ts QueueError. */
const QueueError = {
  AVAIL_INDEX_JUMP: 1, HEAD_OUT_OF_RANGE: 2, NEXT_OUT_OF_RANGE: 3, CHAIN_TOO_LONG: 4, ADDRESS_OUT_OF_RANGE: 5,
  LENGTH_OVERFLOW: 6, INDIRECT_NOT_NEGOTIATED: 7, NESTED_INDIRECT: 8, INDIRECT_WITH_NEXT: 9, BAD_INDIRECT_LENGTH: 10,
  READABLE_AFTER_WRITABLE: 11, INVALID_QUEUE_CONFIG: 12,
} as const;

async function queue(size = 8): Promise<{ h: Harness; q: Queue }> {
  const h = await createRngHarness(RAM);
  const dev = setupDevice(h, VIRTIO_BASE, [queueLayout(RING, size)], FEATURE.INDIRECT_DESC | FEATURE.EVENT_IDX);
  return { h, q: dev.queues[0] };
}

const d = (addr: number, len: number, flags: number, next = 0): Descriptor => ({ addr, len, flags, next });

/** Writes `table` at the start of the descriptor table (and `indirect` at INDIRECT), makes `head` available, kicks. */
function run(h: Harness, q: Queue, table: Descriptor[], indirect: Descriptor[] = [], head = 0): void {
  table.forEach((desc, i) => writeDesc(h, q.desc, i, desc));
  indirect.forEach((desc, i) => writeDesc(h, INDIRECT, i, desc));
  publish(q, [head]);
  kick(q);
}

function assertFailed(h: Harness, q: Queue, error: number, what: string): void {
  assert.is(q.device.read(REG.STATUS) & STATUS.NEEDS_RESET, STATUS.NEEDS_RESET, `${what}: DEVICE_NEEDS_RESET`);
  assert.is(h.devices.virtioFailure(0), error, `${what}: QueueError`);
  assert.equal(readUsed(q), [], `${what}: nothing used`);
  assert.equal(h.fills, [], `${what}: nothing filled`);
}

const broken: [string, number, Descriptor[], Descriptor[], number?][] = [
  ['head index past the queue size', QueueError.HEAD_OUT_OF_RANGE, [], [], 8],
  ['next index past the queue size', QueueError.NEXT_OUT_OF_RANGE, [d(BUFFER, 8, WRITE | NEXT, 8)], []],
  ['a descriptor loop', QueueError.CHAIN_TOO_LONG, [d(BUFFER, 8, WRITE | NEXT, 1), d(BUFFER, 8, WRITE | NEXT, 0)], []],
  ['a chain pointing at itself', QueueError.CHAIN_TOO_LONG, [d(BUFFER, 8, WRITE | NEXT, 0)], []],
  ['a buffer past the end of RAM', QueueError.ADDRESS_OUT_OF_RANGE, [d(RAM - 4, 8, WRITE)], []],
  ['a buffer at the module data (3 GiB)', QueueError.ADDRESS_OUT_OF_RANGE, [d(0xc000_0000, 8, WRITE)], []],
  ['a buffer whose end wraps 2^64', QueueError.ADDRESS_OUT_OF_RANGE, [d(2 ** 64 - 4096, 8192, WRITE)], []],
  ['a length of 4 GiB - 1', QueueError.ADDRESS_OUT_OF_RANGE, [d(0, 0xffff_ffff, WRITE)], []],
  ['a readable descriptor after a writable one', QueueError.READABLE_AFTER_WRITABLE,
    [d(BUFFER, 8, WRITE | NEXT, 1), d(BUFFER, 8, 0)], []],
  ['an indirect descriptor with NEXT', QueueError.INDIRECT_WITH_NEXT, [d(INDIRECT, 16, IND | NEXT, 1)], [d(BUFFER, 8, WRITE)]],
  ['an empty indirect table', QueueError.BAD_INDIRECT_LENGTH, [d(INDIRECT, 0, IND)], []],
  ['an indirect table of 24 bytes', QueueError.BAD_INDIRECT_LENGTH, [d(INDIRECT, 24, IND)], [d(BUFFER, 8, WRITE)]],
  ['an indirect table past the end of RAM', QueueError.ADDRESS_OUT_OF_RANGE, [d(RAM - 16, 32, IND)], []],
  ['nested indirect tables', QueueError.NESTED_INDIRECT, [d(INDIRECT, 16, IND)], [d(INDIRECT, 16, IND)]],
  ['an indirect next past the table', QueueError.NEXT_OUT_OF_RANGE, [d(INDIRECT, 32, IND)],
    [d(BUFFER, 8, WRITE | NEXT, 1), d(BUFFER, 8, WRITE | NEXT, 2)]],
  ['an indirect loop', QueueError.CHAIN_TOO_LONG, [d(INDIRECT, 32, IND)],
    [d(BUFFER, 8, WRITE | NEXT, 1), d(BUFFER, 8, WRITE | NEXT, 0)]],
  ['a readable indirect entry after a writable direct one', QueueError.READABLE_AFTER_WRITABLE,
    [d(BUFFER, 8, WRITE | NEXT, 1), d(INDIRECT, 16, IND)], [d(BUFFER, 8, 0)]],
];

test('virtqueue: every broken chain sets DEVICE_NEEDS_RESET with its QueueError', async () => {
  for (const [what, error, table, indirect, head] of broken) {
    const { h, q } = await queue();
    run(h, q, table, indirect, head);
    assertFailed(h, q, error, what);
  }
});

test('virtqueue: an indirect table with more entries than the queue size is too long a chain', async () => {
  const { h, q } = await queue(4);
  const entries = Array.from({ length: 5 }, (_, i) => d(BUFFER, 1, WRITE | (i < 4 ? NEXT : 0), i + 1));
  run(h, q, [d(INDIRECT, 16 * entries.length, IND)], entries);
  assertFailed(h, q, QueueError.CHAIN_TOO_LONG, 'indirect chain of 5 in a queue of 4');
  const ok = await queue(4);
  run(ok.h, ok.q, [d(INDIRECT, 64, IND)], entries.slice(0, 3).concat(d(BUFFER, 1, WRITE)));
  assert.equal(readUsed(ok.q), [{ id: 0, len: 4 }], 'exactly the queue size is fine');
});

test('virtqueue: lengths summing past 4 GiB', async () => {
  const ram = 0xc000_0000; // the largest guest RAM: 3 GiB
  const h = await createRngHarness(ram);
  const q = setupDevice(h, VIRTIO_BASE, [queueLayout(RING, 8)]).queues[0];
  run(h, q, [d(0, ram, WRITE | NEXT, 1), d(0, ram / 2, WRITE)]);
  assertFailed(h, q, QueueError.LENGTH_OVERFLOW, '3 GiB + 1.5 GiB');
});

test('virtqueue: INDIRECT_DESC not negotiated', async () => {
  const h = await createRngHarness(RAM);
  const q = setupDevice(h, VIRTIO_BASE, [queueLayout(RING, 8)]).queues[0];
  addChain(q, [{ addr: BUFFER, len: 8, write: true }], { indirect: INDIRECT });
  kick(q);
  assertFailed(h, q, QueueError.INDIRECT_NOT_NEGOTIATED, 'indirect without the feature');
});

test('virtqueue: avail.idx more than the queue size ahead', async () => {
  const { h, q } = await queue();
  q.availIdx = 9;
  publish(q, []);
  kick(q);
  assertFailed(h, q, QueueError.AVAIL_INDEX_JUMP, 'avail.idx 9 in a queue of 8');
});

test('virtqueue: chains before a broken one are served; the broken one and later ones are not', async () => {
  const { h, q } = await queue();
  addChain(q, [{ addr: BUFFER, len: 8, write: true }]);
  addChain(q, [{ addr: RAM, len: 1, write: true }]);
  addChain(q, [{ addr: BUFFER, len: 8, write: true }]);
  kick(q);
  assert.equal(readUsed(q), [{ id: 0, len: 8 }]);
  assert.equal(h.fills, [[BUFFER, 8]]);
  assert.is(h.devices.virtioFailure(0), QueueError.ADDRESS_OUT_OF_RANGE);
});

test('virtqueue: a buffer ending exactly at the end of guest RAM is served', async () => {
  const { h, q } = await queue();
  addChain(q, [{ addr: RAM - 16, len: 16, write: true }, { addr: RAM, len: 0, write: true }]);
  kick(q);
  assert.equal(readUsed(q), [{ id: 0, len: 16 }]);
  assert.equal(h.fills, [[RAM - 16, 16]]);
});

test.run();
