// virtio-vsock on the real device module, with a fake host behind the vsock
// imports: handshakes both ways, data byte for byte with header and payload
// split across descriptors anywhere, credit and backpressure in both
// directions, SHUTDOWN/RST sequences, transport reset, snapshot, and
// hostile packets (unit cases and a property test).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { loadDevices } from '../../host/wasm/devices.js';
import {
  addChain, kick, mem, queueLayout, readUsed, REG, setupDevice, STATUS, VIRTIO_BASE, VIRTIO_GSI,
  type DeviceHost, type Queue, type Segment, type VirtioTestDevice,
} from './virtio-rings.js';

const CID = 3n;
const HOST_CID = 2n;
const HEADER = 44;
const BUF_ALLOC = 256 * 1024;
const MAX_PAYLOAD = 64 * 1024;
const OP = { REQUEST: 1, RESPONSE: 2, RST: 3, SHUTDOWN: 4, RW: 5, CREDIT_UPDATE: 6, CREDIT_REQUEST: 7 } as const;
const SHUT = { RCV: 1, SEND: 2, BOTH: 3 } as const;
const EAGAIN = 11;
const ECONNREFUSED = 111;
const ECONNRESET = 104;
/** assembly/virtio/vsock/stray_rsts.ts MAX_STRAY_RSTS. */
const MAX_STRAY_RSTS = 64;
/** assembly/virtio/vsock/connection_table.ts MAX_CONNECTIONS. */
const MAX_CONNECTIONS = 256;

const RAM = 16 << 20;
const QUEUE_SIZE = 256;
const RINGS = [0x1000, 0x5000, 0x9000];
const EVENT_BUF = 0xd000;
/** Guest buffers: rx slots of RX_SLOT bytes, then the tx area (one packet at a time). */
const RX_AREA = 0x10_0000;
const RX_SLOT = 0x1_2000;
const RX_SLOTS = 96;
const TX_AREA = 0x80_0000;

/** One host socket as the fake host sees it. */
interface Socket {
  handle: number;
  /** Bytes the host peer has sent that the device has not read yet. */
  inbound: number[];
  /** After `inbound` is drained: end of file (true) or EAGAIN (false). */
  eof: boolean;
  /** Reads fail with this errno (0: they do not). */
  readError: number;
  /** Bytes the next writes may take in total (then EAGAIN). */
  writeRoom: number;
  /** Bytes the device wrote, in order. */
  written: number[];
  watch: { read: boolean; write: boolean };
  shutdowns: number[];
  connected: boolean;
  closed: boolean;
  reads: number;
}

interface Header {
  srcCid: bigint; dstCid: bigint; srcPort: number; dstPort: number; len: number;
  type: number; op: number; flags: number; bufAlloc: number; fwdCnt: number;
}

interface Packet extends Header {
  payload: number[];
  /** Bytes the device said it wrote into the buffer. */
  used: number;
}

interface FakeHost extends DeviceHost {
  sockets: Map<number, Socket>;
  /** Host ports the guest connected to, in order, with the handle given (or -errno). */
  connects: [port: number, result: number][];
  /** Calls with a handle the host never gave or already got back, and iovecs outside guest RAM and the heap. */
  violations: string[];
  /** Host ports vsockConnect refuses. */
  refused: Set<number>;
  /** Interrupts the device raised. */
  pulses: number;
  nextHandle: number;
  socket(handle: number): Socket;
}

function newSocket(handle: number): Socket {
  return {
    handle, inbound: [], eof: false, readError: 0, writeRoom: Infinity, written: [], watch: { read: false, write: false },
    shutdowns: [], connected: false, closed: false, reads: 0,
  };
}

/** A fresh device module whose vsock callbacks are a fake host that checks every handle and iovec it is given. */
async function fakeHost(): Promise<FakeHost> {
  const h = {
    sockets: new Map<number, Socket>(), connects: [], violations: [], refused: new Set<number>(), pulses: 0, nextHandle: 100,
  } as unknown as FakeHost;
  const live = (what: string, handle: number): Socket | undefined => {
    const s = h.sockets.get(handle);
    if (!s || s.closed) {
      h.violations.push(`${what}(${handle})`);
      return undefined;
    }
    return s;
  };
  /** The (addr, len) pieces of an iov, checked to lie in guest RAM or the module's heap (>= 3 GiB). */
  const pieces = (iov: number, count: number): [number, number][] => {
    const memory = h.devices.memory;
    const m = new DataView(memory.buffer);
    const out: [number, number][] = [];
    for (let i = 0; i < count; i++) {
      const addr = Number(m.getBigUint64(iov + 16 * i, true));
      const len = Number(m.getBigUint64(iov + 16 * i + 8, true));
      const inRamOrHeap = addr + len <= memory.buffer.byteLength && (addr >= 0xc000_0000 || addr + len <= RAM);
      if (!inRamOrHeap) h.violations.push(`iov ${addr}+${len}`);
      out.push([addr, len]);
    }
    return out;
  };
  const noop = () => {};
  h.devices = await loadDevices({
    irqLine: noop, consoleWrite: noop, resetRequest: noop, guestExit: noop, wallClockSeconds: () => 0,
    fillRandom: noop, ioSubmit: noop,
    irqPulse() {
      h.pulses++;
    },
    vsock: {
      read(handle, iov, count) {
        const s = live('read', handle);
        if (!s) return -9;
        s.reads++;
        if (s.readError) return -s.readError;
        if (s.inbound.length === 0) return s.eof ? 0 : -EAGAIN;
        const bytes = new Uint8Array(h.devices.memory.buffer);
        let n = 0;
        for (const [addr, len] of pieces(iov, count)) {
          for (let i = 0; i < len && s.inbound.length > 0; i++, n++) bytes[addr + i] = s.inbound.shift()!;
        }
        return n;
      },
      write(handle, iov, count) {
        const s = live('write', handle);
        if (!s) return -9;
        const bytes = new Uint8Array(h.devices.memory.buffer);
        const ranges = pieces(iov, count);
        let n = 0;
        for (const [addr, len] of ranges) {
          for (let i = 0; i < len && s.writeRoom > 0; i++, n++, s.writeRoom--) s.written.push(bytes[addr + i]!);
        }
        return n === 0 && ranges.some(([, len]) => len > 0) ? -EAGAIN : n;
      },
      watch(handle, read, write) {
        const s = live('watch', handle);
        if (s) s.watch = { read, write };
      },
      connect(port) {
        if (h.refused.has(port)) {
          h.connects.push([port, -ECONNREFUSED]);
          return -ECONNREFUSED;
        }
        const handle = h.nextHandle++;
        h.sockets.set(handle, newSocket(handle));
        h.connects.push([port, handle]);
        return handle;
      },
      connected(handle) {
        const s = live('connected', handle);
        if (s) s.connected = true;
      },
      shutdown(handle, flags) {
        live('shutdown', handle)?.shutdowns.push(flags);
      },
      close(handle) {
        const s = live('close', handle);
        if (s) s.closed = true;
      },
    },
  });
  h.socket = (handle) => {
    const s = h.sockets.get(handle);
    if (!s) throw new Error(`no socket ${handle}`);
    return s;
  };
  h.devices.setGuestRamBytes(RAM);
  return h;
}

/** A host-initiated socket the fake host opened (as for "CONNECT <port>"). */
function hostSocket(h: FakeHost): Socket {
  const s = newSocket(h.nextHandle++);
  h.sockets.set(s.handle, s);
  return s;
}

/** The guest driver: rings, rx buffers it posted, packets it received. */
class Guest {
  rx: Queue<FakeHost>;
  tx: Queue<FakeHost>;
  ev: Queue<FakeHost>;
  /** rx chains handed to the device, by head: their writable segments and slot. */
  private posted = new Map<number, { segments: Segment[]; slot: number }>();
  private freeSlots = Array.from({ length: RX_SLOTS }, (_, i) => i);
  constructor(readonly h: FakeHost, readonly dev: VirtioTestDevice<FakeHost>) {
    this.rx = dev.queues[0]!;
    this.tx = dev.queues[1]!;
    this.ev = dev.queues[2]!;
  }

  /** Posts `count` rx buffers of `size` bytes, each split at `splits` (offsets), and kicks. */
  postRx(count = 1, size = HEADER + 4096, splits: number[] = []): void {
    for (let i = 0; i < count; i++) {
      const slot = this.freeSlots.shift();
      if (slot === undefined) throw new Error('test ran out of rx slots');
      const base = RX_AREA + slot * RX_SLOT;
      const cuts = [0, ...splits.filter((c) => c > 0 && c < size), size];
      // Each piece 16 bytes after the previous one ends, so a piece boundary is a real address jump.
      const segments: Segment[] = [];
      let addr = base;
      for (let k = 0; k + 1 < cuts.length; k++) {
        const len = cuts[k + 1]! - cuts[k]!;
        segments.push({ addr, len, write: true });
        addr += len + 16;
      }
      if (addr - base > RX_SLOT) throw new Error('rx buffer too large for its slot');
      const head = addChain(this.rx, segments);
      this.posted.set(head, { segments, slot });
    }
    kick(this.rx);
  }

  /** Rx buffers the test can still post. */
  get freeRxSlots(): number {
    return this.freeSlots.length;
  }

  /** Packets the device put into rx buffers since the last call. */
  received(): Packet[] {
    const bytes = new Uint8Array(this.h.devices.memory.buffer);
    return readUsed(this.rx).map(({ id, len }) => {
      const chain = this.posted.get(id);
      if (!chain) throw new Error(`device used rx head ${id} the guest did not post`);
      this.posted.delete(id);
      this.freeSlots.push(chain.slot);
      const data: number[] = [];
      for (const s of chain.segments) for (let i = 0; i < s.len && data.length < len; i++) data.push(bytes[s.addr + i]!);
      if (len < HEADER) return { ...parseHeader([...data, ...new Array(HEADER).fill(0)]), payload: [], used: len };
      const header = parseHeader(data);
      return { ...header, payload: data.slice(HEADER, HEADER + header.len), used: len };
    });
  }

  /** Sends one packet split at byte offsets `splits` of header + payload; kicks. Asserts the device took it. */
  send(header: Partial<Header>, payload: number[] = [], splits: number[] = []): void {
    const full: Header = {
      srcCid: CID, dstCid: HOST_CID, srcPort: 0, dstPort: 0, len: payload.length, type: 1, op: OP.RW, flags: 0,
      bufAlloc: BUF_ALLOC, fwdCnt: 0, ...header,
    };
    const bytes = [...buildHeader(full), ...payload];
    this.sendRaw(bytes, splits);
  }

  /** Sends `bytes` as one readable chain split at `splits`; kicks and checks the device returned it. */
  sendRaw(bytes: number[], splits: number[] = []): void {
    const m = new Uint8Array(this.h.devices.memory.buffer);
    const cuts = [...new Set([0, ...splits.filter((c) => c > 0 && c < bytes.length), bytes.length])].sort((a, b) => a - b);
    const segments: Segment[] = [];
    let addr = TX_AREA;
    for (let k = 0; k + 1 < cuts.length; k++) {
      const piece = bytes.slice(cuts[k], cuts[k + 1]);
      m.set(piece, addr);
      segments.push({ addr, len: piece.length, write: false });
      addr += piece.length + 16;
    }
    if (segments.length === 0) segments.push({ addr, len: 0, write: false });
    const head = addChain(this.tx, segments);
    kick(this.tx);
    const used = readUsed(this.tx);
    assert.equal(used, [{ id: head, len: 0 }], 'the device returned the tx chain');
  }

  /** Posts one event buffer of `size` bytes and kicks the event queue. */
  postEvent(size = 4): number {
    const head = addChain(this.ev, [{ addr: EVENT_BUF, len: size, write: true }]);
    kick(this.ev);
    return head;
  }
}

function parseHeader(b: number[]): Header {
  const v = new DataView(Uint8Array.from(b.slice(0, HEADER)).buffer);
  return {
    srcCid: v.getBigUint64(0, true), dstCid: v.getBigUint64(8, true), srcPort: v.getUint32(16, true),
    dstPort: v.getUint32(20, true), len: v.getUint32(24, true), type: v.getUint16(28, true), op: v.getUint16(30, true),
    flags: v.getUint32(32, true), bufAlloc: v.getUint32(36, true), fwdCnt: v.getUint32(40, true),
  };
}

function buildHeader(h: Header): number[] {
  const v = new DataView(new ArrayBuffer(HEADER));
  v.setBigUint64(0, BigInt.asUintN(64, h.srcCid), true);
  v.setBigUint64(8, BigInt.asUintN(64, h.dstCid), true);
  v.setUint32(16, h.srcPort >>> 0, true);
  v.setUint32(20, h.dstPort >>> 0, true);
  v.setUint32(24, h.len >>> 0, true);
  v.setUint16(28, h.type & 0xffff, true);
  v.setUint16(30, h.op & 0xffff, true);
  v.setUint32(32, h.flags >>> 0, true);
  v.setUint32(36, h.bufAlloc >>> 0, true);
  v.setUint32(40, h.fwdCnt >>> 0, true);
  return [...new Uint8Array(v.buffer)];
}

/** A module with one vsock device (index 0, CID 3) set up by a driver; `rx` rx buffers posted. */
async function vsock(options: { rx?: number; features?: bigint } = {}): Promise<Guest> {
  const h = await fakeHost();
  assert.is(h.devices.addVirtioVsock(VIRTIO_BASE, VIRTIO_GSI, CID), 0);
  const dev = setupDevice(h, VIRTIO_BASE, RINGS.map((r) => queueLayout(r, QUEUE_SIZE)), options.features ?? ~0n);
  const guest = new Guest(h, dev);
  if (options.rx ?? 8) guest.postRx(options.rx ?? 8);
  return guest;
}

const connect = (g: Guest, s: Socket, guestPort: number): number => g.h.devices.vsockHostConnect(0, s.handle, guestPort);
const ready = (g: Guest, s: Socket, readable: boolean, writable: boolean) =>
  g.h.devices.vsockReady(0, s.handle, readable, writable);
const bytesOf = (n: number, seed = 1) => Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);
/** What a reply packet to the guest must look like apart from the given fields. */
const toGuest = (p: Partial<Header>): Partial<Header> => ({ srcCid: HOST_CID, dstCid: CID, type: 1, ...p });

function assertPacket(p: Packet | undefined, expected: Partial<Header> & { payload?: number[] }, what = 'packet'): void {
  assert.ok(p, `${what}: a packet`);
  for (const [k, v] of Object.entries(toGuest(expected))) assert.equal((p as any)[k], v, `${what}: ${k}`);
}

/** The guest connects from `guestPort` to host port `hostPort`; returns the fake host's socket. */
function guestConnects(g: Guest, guestPort = 50000, hostPort = 5000, bufAlloc = BUF_ALLOC): Socket {
  g.send({ op: OP.REQUEST, srcPort: guestPort, dstPort: hostPort, bufAlloc });
  const [port, handle] = g.h.connects.at(-1)!;
  assert.is(port, hostPort);
  const [response, ...rest] = g.received();
  assert.is(rest.length, 0);
  assertPacket(response, { op: OP.RESPONSE, srcPort: hostPort, dstPort: guestPort, bufAlloc: BUF_ALLOC, fwdCnt: 0, len: 0 });
  return g.h.socket(handle);
}

/** A host-initiated connection to `guestPort` the guest accepts; returns the socket and our local port. */
function hostConnects(g: Guest, guestPort = 1024, bufAlloc = BUF_ALLOC): { s: Socket; port: number } {
  const s = hostSocket(g.h);
  const port = connect(g, s, guestPort);
  assert.ok(port >= 1024, `local port ${port}`);
  const [request] = g.received();
  assertPacket(request, { op: OP.REQUEST, srcPort: port, dstPort: guestPort, bufAlloc: BUF_ALLOC, fwdCnt: 0 });
  g.send({ op: OP.RESPONSE, srcPort: guestPort, dstPort: port, bufAlloc });
  assert.ok(s.connected, 'vsockConnected');
  return { s, port };
}

test('vsock: device id, queues, no feature bits, guest_cid in config space', async () => {
  const g = await vsock();
  const { dev, h } = g;
  assert.is(dev.read(REG.DEVICE_ID), 19);
  for (let q = 0; q < 3; q++) {
    dev.write(REG.QUEUE_SEL, q);
    assert.is(dev.read(REG.QUEUE_NUM_MAX), QUEUE_SIZE);
  }
  dev.write(REG.DEVICE_FEATURES_SEL, 0);
  assert.is(dev.read(REG.DEVICE_FEATURES) & 0xff_ffff, 0, 'no device-specific features');
  const config = (offset: number, size: number) => h.devices.mmioRead(VIRTIO_BASE + 0x100n + BigInt(offset), size);
  assert.is(config(0, 8), CID);
  assert.is(config(0, 4), CID);
  assert.is(config(4, 4), 0n);
  assert.is(config(8, 4), 0n, 'past the config space');
  h.devices.mmioWrite(VIRTIO_BASE + 0x100n, 8, 77n);
  assert.is(config(0, 8), CID, 'read-only');
  assert.throws(() => h.devices.addVirtioVsock(VIRTIO_BASE + 0x1000n, 6, 2n), /guest CID 2 is reserved/);
});

test('vsock: host-initiated handshake: REQUEST on rx, RESPONSE -> vsockConnected, then readable is watched', async () => {
  const g = await vsock({ rx: 0 });
  const s = hostSocket(g.h);
  const port = connect(g, s, 1024);
  assert.ok(port >= 1024);
  assert.equal(g.received(), [], 'no rx buffer yet');
  g.postRx(2);
  assert.ok(g.h.pulses > 0, 'interrupted for the used rx buffer');
  const [request, ...rest] = g.received();
  assert.is(rest.length, 0);
  assertPacket(request, { op: OP.REQUEST, srcPort: port, dstPort: 1024, len: 0, bufAlloc: BUF_ALLOC, fwdCnt: 0 });
  assert.is(s.connected, false);
  assert.equal(s.watch, { read: false, write: false });
  g.send({ op: OP.RESPONSE, srcPort: 1024, dstPort: port });
  assert.ok(s.connected);
  assert.equal(s.watch, { read: true, write: false });
  assert.equal(g.h.violations, []);
  // A second connection gets another local port.
  const other = hostSocket(g.h);
  const port2 = connect(g, other, 1024);
  assert.ok(port2 >= 1024 && port2 !== port);
  assert.is(connect(g, other, 1025), -17, 'a handle in use');
});

test('vsock: host connects are refused before DRIVER_OK and for unknown devices; a guest RST refuses one', async () => {
  const h = await fakeHost();
  h.devices.addVirtioVsock(VIRTIO_BASE, VIRTIO_GSI, CID);
  assert.is(h.devices.vsockHostConnect(0, 1, 1024), -ECONNREFUSED);
  assert.is(h.devices.vsockHostConnect(5, 1, 1024), -19);
  const g = await vsock();
  const s = hostSocket(g.h);
  const port = connect(g, s, 2000);
  g.received();
  g.send({ op: OP.RST, srcPort: 2000, dstPort: port });
  assert.ok(s.closed, 'vsockClose');
  assert.equal(g.received(), [], 'no answer to an RST');
});

test('vsock: guest-initiated REQUEST -> vsockConnect -> RESPONSE; a refused one -> RST', async () => {
  const g = await vsock();
  const s = guestConnects(g, 40000, 5000);
  assert.equal(s.watch, { read: true, write: false });
  g.h.refused.add(6000);
  g.send({ op: OP.REQUEST, srcPort: 40001, dstPort: 6000 });
  assert.equal(g.h.connects.at(-1), [6000, -ECONNREFUSED]);
  const [rst] = g.received();
  assertPacket(rst, { op: OP.RST, srcPort: 6000, dstPort: 40001 });
});

test('vsock: data both ways, byte for byte', async () => {
  const g = await vsock();
  const s = guestConnects(g);
  const out = bytesOf(3000);
  g.send({ srcPort: 50000, dstPort: 5000 }, out);
  assert.equal(s.written, out);
  s.inbound.push(...bytesOf(5000, 2));
  ready(g, s, true, false);
  const packets = g.received();
  // Buffers of a header and 4096 bytes.
  assert.equal(packets.map((p) => p.len), [4096, 5000 - 4096]);
  for (const p of packets) assertPacket(p, { op: OP.RW, srcPort: 5000, dstPort: 50000, bufAlloc: BUF_ALLOC, fwdCnt: 3000 });
  assert.equal(packets.flatMap((p) => p.payload), bytesOf(5000, 2));
  assert.equal(packets.map((p) => p.used), packets.map((p) => HEADER + p.len));
  assert.equal(s.watch, { read: true, write: false }, 'watching again after EAGAIN');
  assert.equal(g.h.violations, []);
});

test('vsock: a tx packet split at every byte offset (one and two cuts) arrives whole', async () => {
  const g = await vsock();
  const s = guestConnects(g);
  const payload = bytesOf(20, 3);
  const total = HEADER + payload.length;
  const expected: number[] = [];
  for (let cut = 0; cut <= total; cut++) {
    g.send({ srcPort: 50000, dstPort: 5000 }, payload, [cut]);
    expected.push(...payload);
    for (const second of [cut + 1, cut + 7, total - 1]) g.send({ srcPort: 50000, dstPort: 5000 }, payload, [cut, second]);
    expected.push(...payload, ...payload, ...payload);
  }
  // Every byte offset as its own descriptor.
  g.send({ srcPort: 50000, dstPort: 5000 }, payload, Array.from({ length: total }, (_, i) => i));
  expected.push(...payload);
  assert.equal(s.written, expected);
  assert.ok(!s.closed);
  assert.equal(g.h.violations, []);
});

test('vsock: an rx buffer split at every byte offset gets the header and payload across the pieces', async () => {
  const g = await vsock({ rx: 1 });
  const s = guestConnects(g, 50000, 5000);
  const size = HEADER + 24;
  for (let cut = 1; cut < size; cut++) {
    const data = bytesOf(24, cut);
    s.inbound.push(...data);
    g.postRx(1, size, [cut, cut + 5]);
    ready(g, s, true, false);
    const [p, ...rest] = g.received();
    assert.is(rest.length, 0);
    assertPacket(p, { op: OP.RW, srcPort: 5000, dstPort: 50000, len: 24, payload: data }, `cut at ${cut}`);
  }
});

test('vsock: a guest sending beyond its credit gets RST and the host socket is closed', async () => {
  const g = await vsock();
  const s = guestConnects(g);
  s.writeRoom = 0;
  for (let i = 0; i < BUF_ALLOC / MAX_PAYLOAD; i++) g.send({ srcPort: 50000, dstPort: 5000 }, bytesOf(MAX_PAYLOAD, i));
  assert.is(s.closed, false, 'exactly the credit is fine');
  assert.equal(s.watch, { read: true, write: true });
  assert.equal(g.received(), []);
  g.send({ srcPort: 50000, dstPort: 5000 }, [1]);
  assert.ok(s.closed);
  const [rst] = g.received();
  assertPacket(rst, { op: OP.RST, srcPort: 5000, dstPort: 50000 });
  // The connection is gone: more data gets another RST, nothing reaches the closed handle.
  g.send({ srcPort: 50000, dstPort: 5000 }, [2]);
  assertPacket(g.received()[0], { op: OP.RST, srcPort: 5000, dstPort: 50000 });
  assert.equal(g.h.violations, []);
});

test('vsock: partial host writes are buffered, flushed on writable, and fwd_cnt counts only written bytes', async () => {
  const g = await vsock();
  const s = guestConnects(g);
  s.writeRoom = 10;
  const data = bytesOf(100, 5);
  g.send({ srcPort: 50000, dstPort: 5000 }, data.slice(0, 60));
  g.send({ srcPort: 50000, dstPort: 5000 }, data.slice(60));
  assert.equal(s.written, data.slice(0, 10));
  assert.equal(s.watch, { read: true, write: true });
  g.send({ op: OP.CREDIT_REQUEST, srcPort: 50000, dstPort: 5000 });
  assertPacket(g.received()[0], { op: OP.CREDIT_UPDATE, srcPort: 5000, dstPort: 50000, fwdCnt: 10, bufAlloc: BUF_ALLOC });
  s.writeRoom = 25;
  ready(g, s, false, true);
  assert.equal(s.written, data.slice(0, 35));
  assert.equal(s.watch, { read: true, write: true }, 'still pending');
  s.writeRoom = Infinity;
  ready(g, s, false, true);
  assert.equal(s.written, data);
  assert.equal(s.watch, { read: true, write: false });
  g.send({ op: OP.CREDIT_REQUEST, srcPort: 50000, dstPort: 5000 });
  assertPacket(g.received()[0], { op: OP.CREDIT_UPDATE, fwdCnt: 100 });
});

test('vsock: a CREDIT_UPDATE goes out once half the buffer was forwarded since the last one', async () => {
  const g = await vsock();
  const s = guestConnects(g);
  g.send({ srcPort: 50000, dstPort: 5000 }, bytesOf(MAX_PAYLOAD));
  assert.equal(g.received(), []);
  g.send({ srcPort: 50000, dstPort: 5000 }, bytesOf(MAX_PAYLOAD));
  assertPacket(g.received()[0], { op: OP.CREDIT_UPDATE, fwdCnt: 2 * MAX_PAYLOAD });
  assert.is(s.written.length, 2 * MAX_PAYLOAD);
  // Host data carries the credit as well, so no separate update is owed for it.
  g.send({ srcPort: 50000, dstPort: 5000 }, bytesOf(MAX_PAYLOAD));
  s.inbound.push(7);
  ready(g, s, true, false);
  const packets = g.received();
  assert.is(packets.length, 1);
  assertPacket(packets[0], { op: OP.RW, fwdCnt: 3 * MAX_PAYLOAD, payload: [7] });
});

test('vsock: host reads stop without guest credit and resume after CREDIT_UPDATE', async () => {
  const g = await vsock();
  const s = guestConnects(g, 50000, 5000, 100);
  s.inbound.push(...bytesOf(300, 9));
  ready(g, s, true, false);
  let packets = g.received();
  assert.equal(packets.map((p) => p.len), [100]);
  assert.equal(s.watch, { read: false, write: false }, 'no credit: not watching');
  const reads = s.reads;
  ready(g, s, true, false);
  assert.is(s.reads, reads, 'a stray readiness report reads nothing without credit');
  assert.equal(g.received(), []);
  g.send({ op: OP.CREDIT_UPDATE, srcPort: 50000, dstPort: 5000, bufAlloc: 100, fwdCnt: 60 });
  packets = g.received();
  assert.equal(packets.map((p) => p.len), [60]);
  g.send({ op: OP.CREDIT_UPDATE, srcPort: 50000, dstPort: 5000, bufAlloc: 1000, fwdCnt: 160 });
  packets = g.received();
  assert.equal(packets.map((p) => p.len), [140]);
  assert.equal(packets[0]!.payload, bytesOf(300, 9).slice(160));
  assert.equal(s.watch, { read: true, write: false }, 'credit left, socket empty: watching');
});

test('vsock: without rx buffers host data stays in the socket until the guest posts some', async () => {
  const g = await vsock({ rx: 0 });
  g.postRx(1);
  const s = guestConnects(g);
  s.inbound.push(...bytesOf(15_000, 4));
  ready(g, s, true, false);
  assert.equal(g.received(), []);
  assert.equal(s.watch, { read: false, write: false }, 'known readable, no buffer: not watching');
  assert.is(s.reads, 0);
  g.postRx(3);
  const packets = g.received();
  assert.equal(packets.flatMap((p) => p.payload), bytesOf(15_000, 4).slice(0, 3 * 4096));
  // The rest fits one buffer; the second finds the socket empty and is left to the guest.
  g.postRx(2);
  assert.equal(g.received().flatMap((p) => p.payload), bytesOf(15_000, 4).slice(3 * 4096));
  assert.equal(s.watch, { read: true, write: false });
});

test('vsock: guest SHUTDOWN(SEND) waits for pending data; SHUTDOWN(BOTH) -> RST and vsockClose', async () => {
  const g = await vsock();
  const s = guestConnects(g);
  s.writeRoom = 0;
  g.send({ srcPort: 50000, dstPort: 5000 }, bytesOf(50));
  g.send({ op: OP.SHUTDOWN, flags: SHUT.SEND, srcPort: 50000, dstPort: 5000 });
  assert.equal(s.shutdowns, [], 'data first');
  s.writeRoom = Infinity;
  ready(g, s, false, true);
  assert.equal(s.written, bytesOf(50));
  assert.equal(s.shutdowns, [SHUT.SEND]);
  // The host may still send.
  s.inbound.push(1, 2, 3);
  ready(g, s, true, false);
  assertPacket(g.received()[0], { op: OP.RW, payload: [1, 2, 3] });
  // RW after its own SHUTDOWN(SEND) breaks the protocol.
  g.send({ srcPort: 50000, dstPort: 5000 }, [9]);
  assert.ok(s.closed);
  assertPacket(g.received()[0], { op: OP.RST });

  const t = guestConnects(g, 50001, 5000);
  g.send({ op: OP.SHUTDOWN, flags: SHUT.BOTH, srcPort: 50001, dstPort: 5000 });
  assert.equal(t.shutdowns, [SHUT.BOTH]);
  assert.ok(t.closed);
  assertPacket(g.received()[0], { op: OP.RST, srcPort: 5000, dstPort: 50001 });
  assert.equal(g.h.violations, []);
});

test('vsock: SHUTDOWN(BOTH) with data pending closes after the flush; a closing connection waits for its RST', async () => {
  const g = await vsock({ rx: 0 });
  g.postRx(1);
  const s = guestConnects(g);
  s.writeRoom = 3;
  g.send({ srcPort: 50000, dstPort: 5000 }, bytesOf(10));
  g.send({ op: OP.SHUTDOWN, flags: SHUT.BOTH, srcPort: 50000, dstPort: 5000 });
  assert.ok(!s.closed);
  assert.equal(s.shutdowns, []);
  s.writeRoom = Infinity;
  ready(g, s, false, true);
  assert.equal(s.written, bytesOf(10));
  assert.equal(s.shutdowns, [SHUT.BOTH]);
  assert.ok(s.closed);
  // No rx buffer: the RST waits, and the connection with it. A REQUEST on its ports is not a new connection yet.
  g.send({ op: OP.REQUEST, srcPort: 50000, dstPort: 5000 });
  assert.is(g.h.connects.length, 1);
  g.postRx(4);
  assert.equal(g.received().map((p) => [p.op, p.dstPort]), [[OP.RST, 50000]]);
  // Now it is.
  g.send({ op: OP.REQUEST, srcPort: 50000, dstPort: 5000 });
  assert.is(g.h.connects.length, 2);
  assertPacket(g.received()[0], { op: OP.RESPONSE, dstPort: 50000 });
  // Anything but RESPONSE or RST on a host-initiated connection the guest has not accepted resets it.
  const t = hostSocket(g.h);
  const port = connect(g, t, 7000);
  g.received();
  g.send({ srcPort: 7000, dstPort: port }, [1, 2]);
  assert.ok(t.closed);
  assert.ok(!t.connected);
  assert.equal(t.written, []);
  assertPacket(g.received()[0], { op: OP.RST, srcPort: port, dstPort: 7000 });
  assert.equal(g.h.violations, []);
});

test('vsock: host EOF -> SHUTDOWN(SEND); host error -> RST and vsockClose; guest RST -> vsockClose', async () => {
  const g = await vsock({ rx: 16 });
  const s = guestConnects(g);
  s.inbound.push(4, 5);
  s.eof = true;
  ready(g, s, true, false);
  const [data, shutdown, ...rest] = g.received();
  assert.is(rest.length, 0);
  assertPacket(data, { op: OP.RW, payload: [4, 5] });
  assertPacket(shutdown, { op: OP.SHUTDOWN, flags: SHUT.SEND, len: 0 });
  assert.equal(s.watch, { read: false, write: false });
  assert.ok(!s.closed, 'the guest may still send');
  g.send({ srcPort: 50000, dstPort: 5000 }, [6]);
  assert.equal(s.written, [6]);
  g.send({ op: OP.SHUTDOWN, flags: SHUT.BOTH, srcPort: 50000, dstPort: 5000 });
  assert.ok(s.closed);
  assertPacket(g.received()[0], { op: OP.RST });

  // The guest's SHUTDOWN(SEND) and the host's end of file: nothing can flow, so the connection ends.
  const v = guestConnects(g, 50004);
  g.send({ op: OP.SHUTDOWN, flags: SHUT.SEND, srcPort: 50004, dstPort: 5000 });
  assert.equal(v.shutdowns, [SHUT.SEND]);
  v.eof = true;
  ready(g, v, true, false);
  assert.ok(v.closed);
  assert.equal(g.received().map((p) => [p.op, p.flags, p.dstPort]), [[OP.SHUTDOWN, SHUT.SEND, 50004], [OP.RST, 0, 50004]]);

  const t = guestConnects(g, 50001);
  t.readError = ECONNRESET;
  ready(g, t, true, false);
  assert.ok(t.closed);
  assertPacket(g.received()[0], { op: OP.RST, dstPort: 50001 });

  const u = guestConnects(g, 50002);
  g.send({ op: OP.RST, srcPort: 50002, dstPort: 5000 });
  assert.ok(u.closed);
  assert.equal(g.received(), [], 'an RST is never answered with an RST');
  g.send({ op: OP.RST, srcPort: 50003, dstPort: 5000 });
  assert.equal(g.received(), [], 'not even for an unknown connection');
  assert.equal(g.h.violations, []);
});

test('vsock: hostile headers get RST and reset the connection they name', async () => {
  const g = await vsock({ rx: 32 });
  const s = guestConnects(g);
  const t = guestConnects(g, 50001);
  // Wrong CIDs name no connection: answered, connection untouched.
  g.send({ srcCid: 4n, srcPort: 50000, dstPort: 5000 }, [1]);
  g.send({ dstCid: 7n, srcPort: 50000, dstPort: 5000 }, [1]);
  assert.equal(g.received().map((p) => [p.op, p.srcPort, p.dstPort]), [[OP.RST, 5000, 50000], [OP.RST, 5000, 50000]]);
  assert.ok(!s.closed);
  assert.equal(s.written, []);
  // A wrong type on a live connection resets it.
  g.send({ type: 2, srcPort: 50000, dstPort: 5000 }, [1]);
  assert.ok(s.closed);
  assertPacket(g.received()[0], { op: OP.RST, dstPort: 50000 });
  // len beyond the payload present, beyond 64 KiB, unknown ops.
  const short = { srcCid: CID, dstCid: HOST_CID, srcPort: 50001, dstPort: 5000, len: 10, type: 1, op: OP.RW };
  g.sendRaw([...buildHeader({ ...short, flags: 0, bufAlloc: 0, fwdCnt: 0 }), 1, 2, 3]);
  assert.ok(t.closed);
  assert.equal(t.written, []);
  assertPacket(g.received()[0], { op: OP.RST, dstPort: 50001 });
  g.send({ srcPort: 1, dstPort: 2, len: MAX_PAYLOAD + 1 }, bytesOf(MAX_PAYLOAD + 1));
  g.send({ op: 0, srcPort: 1, dstPort: 2 });
  g.send({ op: 8, srcPort: 1, dstPort: 2 });
  g.send({ op: 0xffff, srcPort: 1, dstPort: 2 });
  // RW / SHUTDOWN / RESPONSE / credit for unknown connections.
  for (const op of [OP.RW, OP.SHUTDOWN, OP.RESPONSE, OP.CREDIT_UPDATE, OP.CREDIT_REQUEST]) {
    g.send({ op, srcPort: 1, dstPort: 2 });
  }
  assert.equal(g.received().map((p) => [p.op, p.srcPort, p.dstPort]), new Array(9).fill([OP.RST, 2, 1]));
  // A header cut short names nobody: dropped silently.
  g.sendRaw(bytesOf(HEADER - 1));
  g.sendRaw([]);
  assert.equal(g.received(), []);
  // REQUEST for an existing connection: RST, and the connection is reset.
  const u = guestConnects(g, 50002);
  g.send({ op: OP.REQUEST, srcPort: 50002, dstPort: 5000 });
  assert.ok(u.closed);
  assert.equal(g.received().map((p) => p.op), [OP.RST]);
  assert.is(g.h.connects.length, 3, 'no second vsockConnect');
  assert.equal(g.h.violations, []);
});

test('vsock: RSTs owed to packets of no connection are capped while the guest posts no rx buffers', async () => {
  const g = await vsock({ rx: 0 });
  for (let i = 0; i < 200; i++) g.send({ srcPort: 10 + i, dstPort: 2 }, [1]);
  g.postRx(MAX_STRAY_RSTS + 10);
  const packets = g.received();
  assert.is(packets.length, MAX_STRAY_RSTS);
  assert.equal(packets.map((p) => p.dstPort), Array.from({ length: MAX_STRAY_RSTS }, (_, i) => 10 + i));
});

test('vsock: at most MAX_CONNECTIONS connections; beyond, REQUESTs get RST and host connects -ENOBUFS', async () => {
  const g = await vsock({ rx: 40 });
  let opened = 0;
  for (let i = 0; i < MAX_CONNECTIONS; i++) {
    g.send({ op: OP.REQUEST, srcPort: 20000 + i, dstPort: 5000 });
    opened++;
    if (i % 32 === 31) {
      assert.ok(g.received().every((p) => p.op === OP.RESPONSE));
      g.postRx(32);
    }
  }
  g.received();
  g.send({ op: OP.REQUEST, srcPort: 30000, dstPort: 5000 });
  assert.is(g.h.connects.length, opened, 'no vsockConnect beyond the cap');
  g.postRx(1);
  assert.equal(g.received().map((p) => p.op), [OP.RST]);
  assert.is(connect(g, hostSocket(g.h), 1024), -105);
});

test('vsock: transport reset closes every connection, changes the CID and delivers the event', async () => {
  const g = await vsock();
  const s = guestConnects(g);
  const { s: t } = hostConnects(g);
  const pending = hostSocket(g.h);
  connect(g, pending, 3000);
  g.received();
  g.h.devices.vsockTransportReset(0, 9n);
  assert.ok(s.closed && t.closed && pending.closed);
  assert.is(g.h.devices.mmioRead(VIRTIO_BASE + 0x100n, 8), 9n);
  assert.equal(readUsed(g.ev), [], 'no event buffer yet');
  const head = g.postEvent();
  assert.equal(readUsed(g.ev), [{ id: head, len: 4 }]);
  assert.is(mem(g.h).getUint32(EVENT_BUF, true), 0, 'VIRTIO_VSOCK_EVENT_TRANSPORT_RESET');
  // Old-CID packets are now foreign; new ones work.
  g.send({ op: OP.REQUEST, srcPort: 1, dstPort: 5000 });
  assert.is(g.h.connects.length, 1);
  g.received();
  g.send({ op: OP.REQUEST, srcCid: 9n, srcPort: 1, dstPort: 5000 });
  assert.is(g.h.connects.length, 2);
  assertPacket(g.received()[0], { op: OP.RESPONSE, dstCid: 9n });
  // With an event buffer already posted, the event goes at once.
  const head2 = g.postEvent();
  assert.equal(readUsed(g.ev), []);
  g.h.devices.vsockTransportReset(0, 10n);
  assert.equal(readUsed(g.ev), [{ id: head2, len: 4 }]);
  assert.equal(g.h.violations, []);
});

test('vsock: snapshot keeps the CID and queues; the device reset closes connections', async () => {
  const g = await vsock();
  const s = guestConnects(g);
  const blob = g.h.devices.saveState();
  const h2 = await fakeHost();
  h2.devices.addVirtioVsock(VIRTIO_BASE, VIRTIO_GSI, 42n);
  h2.devices.restoreState(blob);
  assert.is(h2.devices.mmioRead(VIRTIO_BASE + 0x100n, 8), CID);
  assert.is(Number(h2.devices.mmioRead(VIRTIO_BASE + BigInt(REG.STATUS), 4)), 0x0f);
  // The driver resets the device: connections end without a packet.
  g.dev.write(REG.STATUS, 0);
  assert.ok(s.closed);
  assert.equal(g.h.violations, []);
});

test('vsock: a broken tx ring sets DEVICE_NEEDS_RESET; readiness reports then stop being watched', async () => {
  const g = await vsock();
  const s = guestConnects(g);
  const m = mem(g.h);
  m.setUint16(g.tx.avail + 2, (g.tx.availIdx + 1000) & 0xffff, true);
  kick(g.tx);
  assert.is(g.dev.read(REG.STATUS) & STATUS.NEEDS_RESET, STATUS.NEEDS_RESET);
  ready(g, s, true, true);
  assert.equal(s.watch, { read: false, write: false });
  assert.is(connect(g, hostSocket(g.h), 1024), -ECONNREFUSED);
});

// Property: a hostile guest sends arbitrary packets (valid-looking ones for live connections, random fields,
// random splits) while the host misbehaves at random; nothing throws, the host only sees its own open handles
// and guest-RAM or heap iovecs, gets no more bytes than the guest sent, and every packet to the guest is well-formed.
const headerArb = fc.record({
  srcCid: fc.oneof(fc.constant(CID), fc.constant(CID), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  dstCid: fc.oneof(fc.constant(HOST_CID), fc.constant(HOST_CID), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  srcPort: fc.oneof(fc.integer({ min: 50000, max: 50003 }), fc.nat()),
  dstPort: fc.oneof(fc.constant(5000), fc.integer({ min: 1 << 30, max: (1 << 30) + 3 }), fc.nat()),
  type: fc.oneof(fc.constant(1), fc.constant(1), fc.integer({ min: 0, max: 0xffff })),
  op: fc.oneof(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 0xffff })),
  flags: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.nat()),
  bufAlloc: fc.oneof(fc.constant(BUF_ALLOC), fc.nat(), fc.constant(0)),
  fwdCnt: fc.nat(),
});
const actionArb = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      header: headerArb,
      payload: fc.integer({ min: 0, max: 3000 }),
      lenDelta: fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 5 }), fc.constant(MAX_PAYLOAD), fc.nat()),
      splits: fc.array(fc.nat({ max: 3100 }), { maxLength: 6 }),
    }),
  },
  // A well-formed packet for a connection the guest or host opened earlier, any op and credit.
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('peer' as const), which: fc.nat(), op: fc.integer({ min: 1, max: 7 }),
      payload: fc.integer({ min: 0, max: 3000 }), flags: fc.integer({ min: 0, max: 3 }),
      bufAlloc: fc.oneof(fc.constant(BUF_ALLOC), fc.nat({ max: 5000 })),
      fwdCnt: fc.oneof(fc.constant(0), fc.nat({ max: 20000 })),
      splits: fc.array(fc.nat({ max: 3100 }), { maxLength: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('rx' as const), count: fc.integer({ min: 0, max: 4 }),
      size: fc.oneof(fc.integer({ min: HEADER + 1, max: 6000 }), fc.integer({ min: 0, max: 6000 })),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('host' as const), which: fc.nat(), inbound: fc.integer({ min: 0, max: 9000 }), eof: fc.boolean(),
      error: fc.oneof(fc.constant(false), fc.constant(false), fc.constant(true)),
      room: fc.oneof(fc.constant(Infinity), fc.nat({ max: 5000 })),
      readable: fc.oneof(fc.constant(true), fc.boolean()), writable: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('connect' as const), guestPort: fc.oneof(fc.constant(1024), fc.nat()) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset' as const) }) },
);

test('vsock: hostile guest and erratic host never throw, leak handles or exceed caps (property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(actionArb, { minLength: 1, maxLength: 40 }), async (actions) => {
      const g = await vsock({ rx: 16 });
      const h = g.h;
      let sentToHost = 0;
      /** (guest port, local port) pairs of connections opened so far. */
      const known: [number, number][] = [];
      for (const a of actions) {
        if (a.kind === 'peer') {
          // A REQUEST opens a new connection from a fresh guest port (or, at random, repeats an existing one).
          const fresh: [number, number] = [60000 + known.length, 5000];
          const old = known[a.which % Math.max(1, known.length)] ?? fresh;
          const [guestPort, localPort] = a.op === OP.REQUEST && a.which % 4 !== 0 ? fresh : old;
          const payload = a.op === OP.RW ? bytesOf(a.payload) : [];
          const { op, flags, bufAlloc, fwdCnt } = a;
          g.send({ op, srcPort: guestPort, dstPort: localPort, flags, bufAlloc, fwdCnt }, payload, a.splits);
          if (a.op === OP.REQUEST) known.push([guestPort, localPort]);
          sentToHost += payload.length;
        } else if (a.kind === 'send') {
          const payload = bytesOf(a.payload);
          const len = Math.max(0, a.payload + a.lenDelta) >>> 0;
          const bytes = [...buildHeader({ ...a.header, len }), ...payload];
          g.sendRaw(bytes, a.splits);
          if (a.header.op === OP.RW) sentToHost += Math.min(len, a.payload);
          if (a.header.op === OP.REQUEST) known.push([a.header.srcPort, a.header.dstPort]);
        } else if (a.kind === 'rx') {
          if (a.count > 0 && a.count <= g.freeRxSlots) g.postRx(a.count, a.size, [a.size >> 1]);
        } else if (a.kind === 'host') {
          const open = [...h.sockets.values()].filter((s) => !s.closed);
          if (open.length === 0) continue;
          const s = open[a.which % open.length]!;
          s.inbound.push(...bytesOf(a.inbound));
          s.eof = a.eof;
          s.readError = a.error ? ECONNRESET : 0;
          s.writeRoom = a.room;
          ready(g, s, a.readable, a.writable);
        } else if (a.kind === 'connect') {
          const port = connect(g, hostSocket(h), a.guestPort);
          if (port > 0) known.push([a.guestPort, port]);
        } else {
          h.devices.vsockTransportReset(0, CID);
        }
        const packets = g.received();
        for (const p of packets) {
          if (p.used === 0) continue;
          assert.ok(p.used >= HEADER, 'a used buffer holds a header');
          assert.equal([p.srcCid, p.dstCid, p.type], [HOST_CID, CID, 1]);
          assert.ok(p.op >= OP.REQUEST && p.op <= OP.CREDIT_UPDATE && p.op !== OP.CREDIT_REQUEST, `op ${p.op}`);
          assert.is(p.used, HEADER + p.len);
          assert.ok(p.len <= MAX_PAYLOAD);
        }
        assert.equal(h.violations, []);
        const open = [...h.sockets.values()].filter((s) => !s.closed);
        assert.ok(open.length <= MAX_CONNECTIONS + 1);
      }
      const written = [...h.sockets.values()].reduce((n, s) => n + s.written.length, 0);
      assert.ok(written <= sentToHost, 'the host never gets more than the guest sent');
      assert.is(h.devices.virtioFailure(0), 0, 'well-formed rings never fail the device');
    }),
    { numRuns: 200 },
  );
});

test.run();
