// virtio-blk on the real device module: config space and features, how
// requests become I/O records (assembly/virtio/io.ts) for the host, how
// completions come back into the rings, and what a misbehaving driver or
// host gets: error statuses, DEVICE_NEEDS_RESET, ignored completions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createHarness, type Harness, type IoRecord } from './device-harness.js';
import {
  addChain, FEATURE, INTERRUPT, kick, mem, offeredFeatures, queueLayout, readUsed, REG, setupDevice, STATUS,
  VIRTIO_BASE, VIRTIO_GSI, type Queue, type Segment, type VirtioTestDevice,
} from './virtio-rings.js';

const RING = 0x1_0000;
const HEADER = 0x4_0000;
const DATA = 0x5_0000;
const STATUS_BYTE = 0x6_0000;
const FILE = 3;
const CAPACITY = 2048n;
const QUEUE_SIZE = 256;

const T = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
const S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
const OP = { READ: 0, WRITE: 1, FLUSH: 2, DISCARD: 3, WRITE_ZEROES: 4 } as const;
const BLK_F = { SEG_MAX: 1n << 2n, RO: 1n << 5n, BLK_SIZE: 1n << 6n, FLUSH: 1n << 9n, DISCARD: 1n << 13n, WRITE_ZEROES: 1n << 14n };
const EOPNOTSUPP = 95;
const EIO = 5;
/** assembly/virtio/block/device.ts BLOCK_ERROR_NO_STATUS_BYTE. */
const NO_STATUS_BYTE_FAILURE = 0x100;

interface Disk {
  h: Harness;
  dev: VirtioTestDevice;
  q: Queue;
}

/** A module with one virtio-blk (device 0, host file FILE) set up by a driver that accepts every feature. */
async function disk(options: { readOnly?: boolean; capacity?: bigint } = {}): Promise<Disk> {
  const h = await createHarness();
  h.devices.setGuestRamBytes(16 << 20);
  const index = h.devices.addVirtioBlock(VIRTIO_BASE, VIRTIO_GSI, FILE, options.capacity ?? CAPACITY, options.readOnly ?? false);
  assert.is(index, 0);
  const dev = setupDevice(h, VIRTIO_BASE, [queueLayout(RING, QUEUE_SIZE)], ~0n);
  return { h, dev, q: dev.queues[0]! };
}

/** Writes a request header (type, reserved 0, sector) at `addr`. */
function header(h: Harness, addr: number, type: number, sector: bigint): void {
  const m = mem(h);
  m.setUint32(addr, type, true);
  m.setUint32(addr + 4, 0, true);
  m.setBigUint64(addr + 8, sector, true);
}

/** Writes a discard / write-zeroes range at `addr`. */
function range(h: Harness, addr: number, sector: bigint, sectors: number, flags: number): void {
  const m = mem(h);
  m.setBigUint64(addr, sector, true);
  m.setUint32(addr + 8, sectors, true);
  m.setUint32(addr + 12, flags, true);
}

const readable = (addr: number, len: number): Segment => ({ addr, len, write: false });
const writable = (addr: number, len: number): Segment => ({ addr, len, write: true });

/** A request of `type` at `sector` with `data` segments between the header and a 1-byte status; kicks. Returns the head. */
function request(d: Disk, type: number, sector: bigint, data: Segment[] = []): number {
  header(d.h, HEADER, type, sector);
  mem(d.h).setUint8(STATUS_BYTE, 0xff);
  const head = addChain(d.q, [readable(HEADER, 16), ...data, writable(STATUS_BYTE, 1)]);
  kick(d.q);
  return head;
}

const statusByte = (h: Harness, addr = STATUS_BYTE) => mem(h).getUint8(addr);

/** The records of the only ioSubmit since the last call. */
function onlyBatch(h: Harness): IoRecord[] {
  assert.is(h.ioBatches.length, 1, 'one ioSubmit');
  return h.ioBatches.splice(0)[0]!;
}

/** Asserts the request completed at once with `status` and used length `len`, and nothing was submitted. */
function completedAtOnce(d: Disk, head: number, status: number, len = 1): void {
  assert.equal(d.h.ioBatches, [], 'nothing submitted');
  assert.equal(readUsed(d.q), [{ id: head, len }]);
  assert.is(statusByte(d.h), status);
  assert.is(d.h.devices.ioInFlight(), 0);
}

function complete(h: Harness, id: number, result: number): void {
  h.devices.ioComplete(id, result);
  h.devices.ioCompleteEnd();
}

test('virtio-blk: device id, queue size, features and config space', async () => {
  const { h, dev } = await disk();
  assert.is(dev.read(REG.DEVICE_ID), 2);
  dev.write(REG.QUEUE_SEL, 0);
  assert.is(dev.read(REG.QUEUE_NUM_MAX), 256);
  const own = offeredFeatures(dev) & 0xffff_ffffn & ~(FEATURE.INDIRECT_DESC | FEATURE.EVENT_IDX);
  assert.is(own, BLK_F.SEG_MAX | BLK_F.BLK_SIZE | BLK_F.FLUSH | BLK_F.DISCARD | BLK_F.WRITE_ZEROES);
  const config = (offset: number, size: number) => h.devices.mmioRead(VIRTIO_BASE + 0x100n + BigInt(offset), size);
  assert.is(config(0, 8), CAPACITY, 'capacity');
  assert.is(config(0, 4), CAPACITY & 0xffff_ffffn);
  assert.is(config(4, 4), 0n);
  assert.is(config(12, 4), 254n, 'seg_max');
  assert.is(config(20, 4), 512n, 'blk_size');
  assert.is(config(36, 4), 0x7f_ffffn, 'max_discard_sectors');
  assert.is(config(40, 4), 1n, 'max_discard_seg');
  assert.is(config(44, 4), 8n, 'discard_sector_alignment');
  assert.is(config(48, 4), 0x7f_ffffn, 'max_write_zeroes_sectors');
  assert.is(config(52, 4), 1n, 'max_write_zeroes_seg');
  assert.is(config(56, 1), 1n, 'write_zeroes_may_unmap');
  assert.is(config(60, 4), 0n, 'past the fields we offer');
  assert.is(config(0xfc, 8), 0n, 'an access past the config space');
});

test('virtio-blk: a read-only disk offers RO and neither discard nor write zeroes', async () => {
  const { h, dev } = await disk({ readOnly: true, capacity: 0x1_2345_6789n });
  const own = offeredFeatures(dev) & 0xffff_ffffn & ~(FEATURE.INDIRECT_DESC | FEATURE.EVENT_IDX);
  assert.is(own, BLK_F.SEG_MAX | BLK_F.BLK_SIZE | BLK_F.FLUSH | BLK_F.RO);
  assert.is(h.devices.mmioRead(VIRTIO_BASE + 0x100n, 8), 0x1_2345_6789n);
  assert.is(h.devices.mmioRead(VIRTIO_BASE + 0x100n + 36n, 4), 0n, 'no discard limits');
});

test('virtio-blk: a read becomes one READ record over the data pieces; the status byte may share the last one', async () => {
  const d = await disk();
  const { h } = d;
  // 1024 + 512 data bytes, then the status byte right after the data in the same descriptor.
  header(h, HEADER, T.IN, 5n);
  mem(h).setUint8(DATA + 0x1000 + 512, 0xff);
  const head = addChain(d.q, [readable(HEADER, 16), writable(DATA, 1024), writable(DATA + 0x1000, 513)]);
  kick(d.q);
  const [record, ...rest] = onlyBatch(h);
  assert.is(rest.length, 0);
  assert.is(record!.op, OP.READ);
  assert.is(record!.flags, 0);
  assert.is(record!.file, FILE);
  assert.is(record!.offset, 5n * 512n);
  assert.is(record!.length, 1536n);
  assert.equal(record!.iovecs, [[BigInt(DATA), 1024n], [BigInt(DATA + 0x1000), 512n]]);
  assert.is(h.devices.ioInFlight(), 1);
  assert.equal(readUsed(d.q), [], 'nothing used before completion');

  h.pulses.length = 0;
  complete(h, record!.id, 1536);
  assert.equal(readUsed(d.q), [{ id: head, len: 1537 }], 'data and status byte written');
  assert.is(mem(h).getUint8(DATA + 0x1000 + 512), S.OK);
  assert.equal(h.pulses, [VIRTIO_GSI]);
  assert.is(d.dev.read(REG.INTERRUPT_STATUS) & INTERRUPT.VRING, INTERRUPT.VRING);
  assert.is(h.devices.ioInFlight(), 0);
});

test('virtio-blk: a write becomes a WRITE record of the readable bytes after the header, even inside its descriptor', async () => {
  const d = await disk();
  const { h } = d;
  header(h, HEADER, T.OUT, CAPACITY - 2n);
  const head = addChain(d.q, [readable(HEADER, 16 + 512), readable(DATA, 512), writable(STATUS_BYTE, 1)]);
  kick(d.q);
  const [record] = onlyBatch(h);
  assert.is(record!.op, OP.WRITE);
  assert.is(record!.offset, (CAPACITY - 2n) * 512n);
  assert.is(record!.length, 1024n);
  assert.equal(record!.iovecs, [[BigInt(HEADER + 16), 512n], [BigInt(DATA), 512n]]);
  complete(h, record!.id, 1024);
  assert.equal(readUsed(d.q), [{ id: head, len: 1 }]);
  assert.is(statusByte(h), S.OK);
});

test('virtio-blk: requests taken in one kick go to the host in one batch, with distinct ids', async () => {
  const d = await disk();
  const { h } = d;
  const heads: number[] = [];
  for (let i = 0; i < 3; i++) {
    header(h, HEADER + 32 * i, T.IN, BigInt(i));
    heads.push(addChain(d.q, [readable(HEADER + 32 * i, 16), writable(DATA + 0x1000 * i, 512), writable(STATUS_BYTE + i, 1)]));
  }
  kick(d.q, 'ioeventfd');
  const records = onlyBatch(h);
  assert.equal(records.map((r) => r.offset), [0n, 512n, 1024n]);
  assert.is(new Set(records.map((r) => r.id)).size, 3);
  // Completions may come back in any order.
  h.devices.ioComplete(records[2]!.id, 512);
  h.devices.ioComplete(records[0]!.id, -EIO);
  h.devices.ioCompleteEnd();
  assert.equal(readUsed(d.q), [{ id: heads[2], len: 513 }, { id: heads[0], len: 1 }]);
  assert.equal([statusByte(h, STATUS_BYTE), statusByte(h, STATUS_BYTE + 2)], [S.IOERR, S.OK]);
  assert.is(h.devices.ioInFlight(), 1);
});

test('virtio-blk: flush, discard and write zeroes records', async () => {
  const d = await disk();
  const { h } = d;
  request(d, T.FLUSH, 0n);
  let [record] = onlyBatch(h);
  assert.equal([record!.op, record!.offset, record!.length, record!.iovecs.length], [OP.FLUSH, 0n, 0n, 0]);
  complete(h, record!.id, 0);
  assert.is(statusByte(h), S.OK);

  range(h, DATA, 100n, 8, 0);
  request(d, T.DISCARD, 0n, [readable(DATA, 16)]);
  [record] = onlyBatch(h);
  assert.equal([record!.op, record!.flags, record!.offset, record!.length], [OP.DISCARD, 0, 100n * 512n, 8n * 512n]);
  complete(h, record!.id, -EOPNOTSUPP);
  assert.is(statusByte(h), S.UNSUPP, 'the file system cannot punch holes');

  range(h, DATA, 10n, 2, 1);
  request(d, T.WRITE_ZEROES, 0n, [readable(DATA, 16)]);
  [record] = onlyBatch(h);
  assert.equal([record!.op, record!.flags, record!.offset, record!.length], [OP.WRITE_ZEROES, 1, 10n * 512n, 1024n]);
  complete(h, record!.id, 1024);
  assert.is(statusByte(h), S.OK);
  assert.equal(readUsed(d.q).map((u) => u.len), [1, 1, 1]);

  request(d, T.IN, 0n, [writable(DATA, 512)]);
  complete(h, onlyBatch(h)[0]!.id, -EOPNOTSUPP);
  assert.is(statusByte(h), S.IOERR, 'EOPNOTSUPP means UNSUPP only for discard and write zeroes');
});

test('virtio-blk: requests outside the disk or of partial sectors fail with IOERR and submit nothing', async () => {
  const d = await disk();
  const cases: [type: number, sector: bigint, data: Segment[]][] = [
    [T.IN, CAPACITY - 1n, [writable(DATA, 1024)]],
    [T.IN, CAPACITY + 1n, []],
    [T.OUT, 0xffff_ffff_ffff_ffffn, [readable(DATA, 512)]],
    [T.IN, 0n, [writable(DATA, 100)]],
    [T.OUT, 0n, [readable(DATA, 513)]],
  ];
  for (const [type, sector, data] of cases) {
    const head = request(d, type, sector, data);
    completedAtOnce(d, head, S.IOERR);
  }
  range(d.h, DATA, CAPACITY - 4n, 5, 0);
  completedAtOnce(d, request(d, T.DISCARD, 0n, [readable(DATA, 16)]), S.IOERR);
  range(d.h, DATA, 0xffff_ffff_ffff_fff0n, 0x20, 0);
  completedAtOnce(d, request(d, T.WRITE_ZEROES, 0n, [readable(DATA, 16)]), S.IOERR);
  // Two ranges where one is allowed.
  completedAtOnce(d, request(d, T.DISCARD, 0n, [readable(DATA, 32)]), S.IOERR);
});

test('virtio-blk: a header shorter than 16 bytes is an IOERR', async () => {
  const d = await disk();
  header(d.h, HEADER, T.IN, 0n);
  mem(d.h).setUint8(STATUS_BYTE, 0xff);
  const head = addChain(d.q, [readable(HEADER, 8), writable(STATUS_BYTE, 1)]);
  kick(d.q);
  completedAtOnce(d, head, S.IOERR);
});

test('virtio-blk: a zero-length read or an empty range completes at once with OK', async () => {
  const d = await disk();
  completedAtOnce(d, request(d, T.IN, CAPACITY), S.OK);
  range(d.h, DATA, CAPACITY, 0, 0);
  completedAtOnce(d, request(d, T.DISCARD, 0n, [readable(DATA, 16)]), S.OK);
});

test('virtio-blk: a read-only disk refuses writes, discards and write zeroes without submitting anything', async () => {
  const d = await disk({ readOnly: true });
  completedAtOnce(d, request(d, T.OUT, 0n, [readable(DATA, 512)]), S.IOERR);
  range(d.h, DATA, 0n, 1, 0);
  completedAtOnce(d, request(d, T.DISCARD, 0n, [readable(DATA, 16)]), S.IOERR);
  completedAtOnce(d, request(d, T.WRITE_ZEROES, 0n, [readable(DATA, 16)]), S.IOERR);
  completedAtOnce(d, request(d, T.FLUSH, 0n), S.OK);
  request(d, T.IN, 0n, [writable(DATA, 512)]);
  assert.is(onlyBatch(d.h)[0]!.op, OP.READ, 'reads still go to the host');
});

test('virtio-blk: discard with the unmap flag, or unknown flags, is UNSUPP', async () => {
  const d = await disk();
  range(d.h, DATA, 0n, 1, 1);
  completedAtOnce(d, request(d, T.DISCARD, 0n, [readable(DATA, 16)]), S.UNSUPP);
  range(d.h, DATA, 0n, 1, 2);
  completedAtOnce(d, request(d, T.WRITE_ZEROES, 0n, [readable(DATA, 16)]), S.UNSUPP);
});

test('virtio-blk: GET_ID writes the serial, NUL-padded and cut to the buffer', async () => {
  const d = await disk();
  const id = new Uint8Array(d.h.devices.memory.buffer, DATA, 20);
  id.fill(0xee);
  completedAtOnce(d, request(d, T.GET_ID, 0n, [writable(DATA, 20)]), S.OK, 21);
  const expected = new Uint8Array(20);
  expected.set(Buffer.from(`hako-disk-${FILE}`));
  assert.equal([...id], [...expected]);
  id.fill(0xee);
  completedAtOnce(d, request(d, T.GET_ID, 0n, [writable(DATA, 8)]), S.OK, 9);
  assert.is(Buffer.from(id.subarray(0, 9)).toString('latin1'), 'hako-dis\xee');
});

test('virtio-blk: unknown request types are UNSUPP', async () => {
  const d = await disk();
  for (const type of [2, 3, 7, 14, 0xffff_ffff]) completedAtOnce(d, request(d, type, 0n, [writable(DATA, 512)]), S.UNSUPP);
});

test('virtio-blk: a chain without a writable byte for the status makes the device need a reset', async () => {
  const d = await disk();
  header(d.h, HEADER, T.IN, 0n);
  addChain(d.q, [readable(HEADER, 16), readable(DATA, 512)]);
  d.h.pulses.length = 0;
  kick(d.q);
  assert.equal(d.h.ioBatches, []);
  assert.is(d.dev.read(REG.STATUS) & STATUS.NEEDS_RESET, STATUS.NEEDS_RESET);
  assert.is(d.dev.read(REG.INTERRUPT_STATUS) & INTERRUPT.CONFIG, INTERRUPT.CONFIG);
  assert.equal(d.h.pulses, [VIRTIO_GSI]);
  assert.is(d.h.devices.virtioFailure(0), NO_STATUS_BYTE_FAILURE);
  assert.equal(readUsed(d.q), []);
});

test('virtio-blk: after a reset, completions of requests in flight are dropped and their slots come back', async () => {
  const d = await disk();
  const { h } = d;
  request(d, T.IN, 0n, [writable(DATA, 512)]);
  const [old] = onlyBatch(h);
  d.dev.write(REG.STATUS, 0);
  assert.is(h.devices.ioInFlight(), 1, 'still in flight on the host');
  const again: Disk = { h, dev: d.dev, q: setupDevice(h, VIRTIO_BASE, [queueLayout(RING, QUEUE_SIZE)], ~0n).queues[0]! };
  h.pulses.length = 0;
  complete(h, old!.id, 512);
  assert.equal(readUsed(again.q), [], 'no used entry in the new rings');
  assert.equal(h.pulses, []);
  assert.is(h.devices.ioInFlight(), 0);
  const head = request(again, T.IN, 1n, [writable(DATA, 512)]);
  const [record] = onlyBatch(h);
  complete(h, record!.id, 512);
  assert.equal(readUsed(again.q), [{ id: head, len: 513 }]);
});

test('virtio-blk: with every slot held by orphans, a new request waits for a completion instead of being lost', async () => {
  const d = await disk();
  const { h } = d;
  // A full queue of reads, each through its own indirect table.
  const INDIRECT = 0x8_0000;
  for (let i = 0; i < QUEUE_SIZE; i++) {
    header(h, HEADER + 16 * i, T.IN, BigInt(i));
    const segments = [readable(HEADER + 16 * i, 16), writable(DATA, 512), writable(STATUS_BYTE + i, 1)];
    addChain(d.q, segments, { indirect: INDIRECT + 64 * i });
  }
  kick(d.q);
  const orphans = onlyBatch(h);
  assert.is(orphans.length, QUEUE_SIZE);
  d.dev.write(REG.STATUS, 0);
  const again: Disk = { h, dev: d.dev, q: setupDevice(h, VIRTIO_BASE, [queueLayout(RING, QUEUE_SIZE)], ~0n).queues[0]! };
  const head = request(again, T.IN, 7n, [writable(DATA, 512)]);
  assert.equal(h.ioBatches, [], 'no slot free yet');
  assert.equal(readUsed(again.q), []);
  complete(h, orphans[0]!.id, 512);
  const [record] = onlyBatch(h);
  assert.is(record!.offset, 7n * 512n);
  assert.is(h.devices.ioInFlight(), QUEUE_SIZE);
  complete(h, record!.id, 512);
  assert.equal(readUsed(again.q), [{ id: head, len: 513 }]);
});

test('virtio-blk: bogus completions are ignored', async () => {
  const h = await createHarness();
  h.devices.setGuestRamBytes(16 << 20);
  h.devices.addVirtioBlock(VIRTIO_BASE, VIRTIO_GSI, FILE, CAPACITY, false);
  assert.is(h.devices.addVirtioRng(VIRTIO_BASE + 0x200n, VIRTIO_GSI + 1), 1);
  const dev = setupDevice(h, VIRTIO_BASE, [queueLayout(RING, QUEUE_SIZE)], ~0n);
  const d: Disk = { h, dev, q: dev.queues[0]! };
  const head = request(d, T.IN, 0n, [writable(DATA, 512)]);
  const [record] = onlyBatch(h);
  for (const id of [0xffff_ffff, 0x0001_0000 | (record!.id & 0xffff), 0x0002_0000, record!.id ^ 1, record!.id | 0x8000]) {
    complete(h, id, 512);
  }
  assert.equal(readUsed(d.q), []);
  assert.is(h.devices.ioInFlight(), 1);
  complete(h, record!.id, 512);
  complete(h, record!.id, 512);
  assert.equal(readUsed(d.q), [{ id: head, len: 513 }], 'completed once');
  assert.is(h.devices.ioInFlight(), 0);
});

/** A second module with one virtio-blk of host file `file`, guest RAM copied from `from`, not yet restored. */
async function twin(from: Harness, file: number, capacity = CAPACITY): Promise<Harness> {
  const h = await createHarness();
  h.devices.setGuestRamBytes(16 << 20);
  h.devices.addVirtioBlock(VIRTIO_BASE, VIRTIO_GSI, file, capacity, false);
  new Uint8Array(h.devices.memory.buffer, 0, 16 << 20).set(new Uint8Array(from.devices.memory.buffer, 0, 16 << 20));
  return h;
}

test('virtio-blk: snapshot: the restored disk keeps serving its rings and the serial the guest saw', async () => {
  const d = await disk();
  request(d, T.IN, 0n, [writable(DATA, 512)]);
  complete(d.h, onlyBatch(d.h)[0]!.id, 512);
  readUsed(d.q);
  const h = await twin(d.h, FILE + 2);
  h.devices.restoreState(d.h.devices.saveState());
  const dev = { ...d.dev, h, read: (o: number) => Number(h.devices.mmioRead(VIRTIO_BASE + BigInt(o), 4)),
    write: (o: number, v: number) => h.devices.mmioWrite(VIRTIO_BASE + BigInt(o), 4, BigInt(v >>> 0)) };
  const restored: Disk = { h, dev, q: { ...d.q, device: dev } };
  assert.is(dev.read(REG.STATUS), 0x0f);
  completedAtOnce(restored, request(restored, T.GET_ID, 0n, [writable(DATA, 20)]), S.OK, 21);
  assert.is(Buffer.from(h.devices.memory.buffer, DATA, 11).toString('latin1'), `hako-disk-${FILE}`);
  request(restored, T.OUT, 1n, [readable(DATA, 512)]);
  const [record] = onlyBatch(h);
  assert.equal([record!.op, record!.file, record!.offset], [OP.WRITE, FILE + 2, 512n], 'the new host file');
});

test('virtio-blk: snapshot: a disk of another size becomes a config change when the VM resumes; refused while I/O is in flight', async () => {
  const d = await disk();
  const blob = d.h.devices.saveState();
  const other = await twin(d.h, FILE, CAPACITY + 1n);
  const read = (o: number) => Number(other.devices.mmioRead(VIRTIO_BASE + BigInt(o), 4));
  other.devices.restoreState(blob);
  const generation = read(REG.CONFIG_GENERATION);
  assert.equal(other.pulses, [], 'no interrupt before the irqchip is restored');
  other.devices.virtioResumed();
  assert.equal(other.pulses, [VIRTIO_GSI]);
  assert.is(read(REG.INTERRUPT_STATUS) & INTERRUPT.CONFIG, INTERRUPT.CONFIG);
  assert.is(read(REG.CONFIG_GENERATION), generation + 1);
  assert.is(other.devices.mmioRead(VIRTIO_BASE + BigInt(REG.CONFIG), 8), CAPACITY + 1n);
  const same = await twin(d.h, FILE);
  same.devices.restoreState(blob);
  same.devices.virtioResumed();
  assert.equal(same.pulses, [], 'the same size: nothing to tell the driver');
  request(d, T.IN, 0n, [writable(DATA, 512)]);
  assert.throws(() => d.h.devices.saveState(), /1 block I\/O requests in flight/);
  assert.throws(() => d.h.devices.restoreState(blob), /in flight/);
});

test('virtio-blk: property: every chain with a status byte gets one used entry and a valid status, whatever the host returns', async () => {
  const REGION = 0x10_0000;
  const REGION_SIZE = 0x1_0000;
  const INDIRECT = 0xf_0000;
  const lens = (minLength: number) => fc.array(fc.constantFrom(0, 1, 15, 16, 17, 511, 512, 513, 1024, 4096), { minLength, maxLength: 4 });
  const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
  const req = fc.record({
    type: fc.oneof(fc.constantFrom(0, 1, 4, 8, 11, 13), fc.integer({ min: 0, max: 0xffff_ffff })),
    sector: fc.oneof(fc.bigInt({ min: 0n, max: CAPACITY + 2n }), u64),
    /** A discard / write-zeroes range right after the header: sector, sectors, flags. */
    range: fc.tuple(fc.oneof(fc.bigInt({ min: 0n, max: CAPACITY }), u64), fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 3 })),
    readable: lens(0),
    writable: lens(1),
    indirect: fc.boolean(),
  });
  const results = fc.array(fc.oneof(fc.constant(0), fc.constant(-EOPNOTSUPP), fc.integer({ min: -200, max: 1 << 20 })), { minLength: 1 });
  await fc.assert(fc.asyncProperty(fc.array(req, { minLength: 1, maxLength: 40 }), results, fc.boolean(), async (reqs, hostResults, readOnly) => {
    const d = await disk({ readOnly });
    const m = mem(d.h);
    const statusAt: number[] = [];
    const heads: number[] = [];
    reqs.forEach((r, i) => {
      const base = REGION + REGION_SIZE * i;
      m.setUint32(base, r.type, true);
      m.setBigUint64(base + 8, r.sector, true);
      m.setBigUint64(base + 16, r.range[0], true);
      m.setUint32(base + 24, r.range[1], true);
      m.setUint32(base + 28, r.range[2], true);
      const segments = [readable(base, 32)];
      let at = base + 0x100;
      for (const [len, write] of [...r.readable.map((l) => [l, false] as const), ...r.writable.map((l) => [l, true] as const)]) {
        segments.push({ addr: at, len, write });
        at += len + 16;
      }
      const last = segments.filter((seg) => seg.write && seg.len > 0).pop();
      statusAt.push(last ? last.addr + last.len - 1 : -1);
      if (last) m.setUint8(last.addr + last.len - 1, 0xff);
      heads.push(addChain(d.q, segments, r.indirect ? { indirect: INDIRECT + 0x100 * (i % 16) } : {}));
      kick(d.q);
    });
    // Complete in reverse order, with a bogus id before each real one.
    const records = d.h.ioBatches.flat().reverse();
    assert.is(d.h.devices.ioInFlight(), records.length);
    records.forEach((record, k) => {
      if (readOnly) assert.is(record.op, OP.READ, 'a read-only disk submits only reads');
      d.h.devices.ioComplete(record.id ^ 0x8000, 0);
      d.h.devices.ioComplete(record.id, hostResults[k % hostResults.length]!);
    });
    d.h.devices.ioCompleteEnd();
    assert.is(d.h.devices.ioInFlight(), 0);
    const used = readUsed(d.q).map((u) => u.id);
    const firstBad = statusAt.indexOf(-1);
    // A chain without a status byte fails the device: it serves nothing after it.
    assert.is((d.dev.read(REG.STATUS) & STATUS.NEEDS_RESET) !== 0, firstBad >= 0);
    const served = firstBad >= 0 ? firstBad : reqs.length;
    assert.equal(used.sort((a, b) => a - b), heads.slice(0, served).sort((a, b) => a - b));
    for (const at of statusAt.slice(0, served)) assert.ok(([S.OK, S.IOERR, S.UNSUPP] as number[]).includes(m.getUint8(at)));
  }), { numRuns: 150 });
});

test.run();
