// The addon's Unix sockets, socket <-> Wasm-memory I/O and fd polling, without
// KVM: a WebAssembly.Memory holds the I/O vectors and data, as the vsock
// device model's would.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isKvmError, native } from '../../host/native.js';

const addon = native();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-native-socket-'));
const EAGAIN = -11, EFAULT = -14, EINVAL = -22, EPIPE = -32;
const IOV = 4096;   // vectors at 4 KiB, data from 64 KiB on
const DATA = 65536;

const memory = new WebAssembly.Memory({ initial: 4 });
const bytes = () => new Uint8Array(memory.buffer);

/** Writes `ranges` as I/O vectors at IOV; returns their count. */
function vectors(ranges: [addr: number, len: number][], at = IOV): number {
  const view = new DataView(memory.buffer);
  ranges.forEach(([addr, len], i) => {
    view.setBigUint64(at + i * 16, BigInt(addr), true);
    view.setBigUint64(at + i * 16 + 8, BigInt(len), true);
  });
  return ranges.length;
}

// Watches never keep the event loop alive (a running VM does): this timer does, while tests wait for events.
const keepAlive = setInterval(() => {}, 60_000);
const openFds = () => fs.readdirSync('/proc/self/fd').length;
let counter = 0;
const socketPath = () => path.join(dir, `s${counter++}.sock`);

/** A connected pair: [client fd from unixConnect, server fd from unixAccept], and the listener (closed). */
function pair(): [number, number] {
  const where = socketPath();
  const listener = addon.unixListen(where);
  try {
    assert.is(addon.unixAccept(listener), null, 'nothing waiting yet');
    const client = addon.unixConnect(where);
    const server = addon.unixAccept(listener);
    assert.type(server, 'number');
    return [client, server!];
  } finally {
    addon.closeFd(listener);
    fs.rmSync(where);
  }
}

const throwsErrno = (fn: () => unknown, code: string, match?: RegExp) => {
  try {
    fn();
  } catch (e) {
    assert.ok(isKvmError(e), `not a KvmError: ${e}`);
    assert.is((e as { code: string }).code, code, (e as Error).message);
    if (match) assert.match((e as Error).message, match);
    return;
  }
  assert.unreachable(`expected ${code}`);
};

test('bytes go from Wasm memory through a socket pair into Wasm memory, gathered and scattered', () => {
  const before = openFds();
  const [a, b] = pair();
  bytes().set(Buffer.from('hello, '), DATA);
  bytes().set(Buffer.from('world'), DATA + 1000);
  assert.is(addon.socketWritev(a, memory.buffer, IOV, vectors([[DATA, 7], [DATA + 1000, 5]])), 12);
  assert.is(addon.socketReadv(b, memory.buffer, IOV, vectors([[DATA + 2000, 3], [DATA + 3000, 100]])), 12);
  assert.is(Buffer.from(bytes().subarray(DATA + 2000, DATA + 2003)).toString(), 'hel');
  assert.is(Buffer.from(bytes().subarray(DATA + 3000, DATA + 3009)).toString(), 'lo, world');
  assert.is(addon.socketReadv(b, memory.buffer, IOV, vectors([[DATA, 10]])), EAGAIN, 'nothing left: EAGAIN, not EOF');
  addon.closeFd(a);
  addon.closeFd(b);
  assert.is(openFds(), before, 'fds leaked');
});

test('EOF reads 0; writing to a closed peer is -EPIPE, not a SIGPIPE; shutdown(write) gives the peer EOF', () => {
  const [a, b] = pair();
  addon.shutdownSocket(a, 'write');
  assert.is(addon.socketReadv(b, memory.buffer, IOV, vectors([[DATA, 10]])), 0);
  addon.closeFd(a);
  addon.shutdownSocket(b, 'both'); // peer gone: no error
  assert.is(addon.socketWritev(b, memory.buffer, IOV, vectors([[DATA, 10]])), EPIPE);
  addon.closeFd(b);
  assert.throws(() => addon.shutdownSocket(0, 'sideways' as 'read'), /how must be 'read', 'write' or 'both'/);
});

test('a vector outside the memory, too many vectors or an empty read is refused without a syscall', () => {
  const [a, b] = pair();
  const size = memory.buffer.byteLength;
  assert.is(addon.socketWritev(a, memory.buffer, IOV, vectors([[size - 4, 5]])), EFAULT);
  assert.is(addon.socketWritev(a, memory.buffer, IOV, vectors([[2 ** 53 - 1, 1]])), EFAULT);
  assert.is(addon.socketReadv(b, memory.buffer, IOV, vectors([[DATA, 2 ** 40]])), EFAULT);
  assert.is(addon.socketReadv(b, memory.buffer, size - 8, 1), EFAULT, 'the vector array itself crosses the end');
  assert.is(addon.socketReadv(b, memory.buffer, IOV, 1025), EINVAL);
  assert.is(addon.socketReadv(b, memory.buffer, IOV, 0), EINVAL, '0 would read as EOF');
  assert.is(addon.socketWritev(a, memory.buffer, IOV, 0), 0);
  assert.is(addon.socketReadv(b, memory.buffer, IOV, vectors([[DATA, 10]])), EAGAIN, 'nothing was sent');
  assert.throws(() => addon.socketReadv(b, memory as unknown as ArrayBuffer, IOV, 1), /memory must be an ArrayBuffer/);
  addon.closeFd(a);
  addon.closeFd(b);
});

test('unixListen replaces a stale socket file, refuses a live one, a non-socket and a too long path', () => {
  const where = socketPath();
  // A socket file whose listener is gone, as a crashed VMM leaves it.
  addon.closeFd(addon.unixListen(where));
  assert.ok(fs.statSync(where).isSocket());
  throwsErrno(() => addon.unixConnect(where), 'ECONNREFUSED');
  const listener = addon.unixListen(where);
  throwsErrno(() => addon.unixListen(where), 'EADDRINUSE', /another process listens/);
  addon.closeFd(listener);
  fs.rmSync(where);

  const file = path.join(dir, 'plain-file');
  fs.writeFileSync(file, 'not a socket');
  throwsErrno(() => addon.unixListen(file), 'EEXIST', /not a socket/);
  assert.is(fs.readFileSync(file, 'utf8'), 'not a socket', 'the file was kept');
  throwsErrno(() => addon.unixListen(path.join(dir, 'x'.repeat(120))), 'ENAMETOOLONG', /at most 107 bytes/);
  throwsErrno(() => addon.unixConnect(path.join(dir, 'nobody-here')), 'ENOENT', /connect\(.*nobody-here\)/);
});

test('pollFd reports readability, writability and hangup as asked, and stops when told', async () => {
  const before = openFds();
  const [a, b] = pair();
  const events: string[] = [];
  let wake: (() => void) | undefined;
  const next = () => new Promise<void>((resolve) => { wake = resolve; });
  const watch = addon.pollFd(b, true, false, (r, w, h) => {
    events.push(`${r ? 'r' : ''}${w ? 'w' : ''}${h ? 'h' : ''}`);
    wake?.();
  });
  bytes().set(Buffer.from('ping'), DATA);
  assert.is(addon.socketWritev(a, memory.buffer, IOV, vectors([[DATA, 4]])), 4);
  await next();
  assert.equal(events, ['r']);
  // Level-triggered: the unread bytes are reported again, until consumed.
  await next();
  assert.is(addon.socketReadv(b, memory.buffer, IOV, vectors([[DATA, 4]])), 4);
  events.length = 0;
  watch.setEvents(false, true);
  await next();
  assert.equal(events[0], 'w');
  watch.setEvents(false, false);
  events.length = 0;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(events, [], 'nothing reported while nothing is watched');
  watch.setEvents(true, false);
  addon.closeFd(a);
  await next();
  assert.ok(events[0]!.startsWith('r') && events[0]!.endsWith('h'), `hangup as readable: ${events}`);
  assert.is(addon.socketReadv(b, memory.buffer, IOV, vectors([[DATA, 4]])), 0);
  watch.close();
  watch.close();
  watch.setEvents(true, true); // after close: no-op
  addon.closeFd(b);
  assert.is(openFds(), before, 'fds leaked');
});

test('a watch closed inside its own callback is not called again', async () => {
  const [a, b] = pair();
  let calls = 0;
  const watch = addon.pollFd(b, false, true, () => {
    calls++;
    watch.close();
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.is(calls, 1);
  addon.closeFd(a);
  addon.closeFd(b);
});

test.after(() => {
  clearInterval(keepAlive);
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
