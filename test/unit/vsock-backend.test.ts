// vsock's host side without KVM or the Wasm device: a fake device model (plain
// TS over a WebAssembly.Memory) drives the backend's callbacks the way
// assembly/virtio/vsock/ does, while real host clients (connectVsock, net
// servers for guest-initiated connections) sit on the Unix sockets.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isKvmError, native } from '../../host/native.js';
import { VsockBackend, type VsockDevice } from '../../host/vsock/backend.js';
import { connectVsock } from '../../host/vsock/client.js';
import { parseConnectLine, parseOkLine } from '../../host/vsock/handshake.js';
import { HakoError } from '../../host/errors.js';
import { validateVsockConfig } from '../../host/vmm/config.js';

const addon = native();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-vsock-'));
const IOV = 4096, DATA = 65536;
const EAGAIN = -11, ENOENT = -2, EBADF = -9;
const openFds = () => fs.readdirSync('/proc/self/fd').length;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let counter = 0;

/** A fake device model: records what the backend tells it, answers hostConnect with `answer`. */
function fakeDevice(answer = (n: number) => 1024 + n) {
  const memory = new WebAssembly.Memory({ initial: 4 });
  const connects: { handle: number; port: number }[] = [];
  const ready: { handle: number; readable: boolean; writable: boolean }[] = [];
  const failures: Error[] = [];
  let onReady: (() => void) | undefined;
  const device: VsockDevice & { throwOnReady?: boolean } = {
    memory: () => memory.buffer,
    hostConnect: (handle, port) => {
      connects.push({ handle, port });
      return answer(connects.length - 1);
    },
    ready: (handle, readable, writable) => {
      if (device.throwOnReady) throw new Error('device model bug');
      ready.push({ handle, readable, writable });
      onReady?.();
    },
    fail: (e) => failures.push(e),
  };
  /** Resolves at the next ready report. */
  const nextReady = () => new Promise<void>((resolve) => { onReady = resolve; });
  const vector = (addr: number, len: number) => {
    const view = new DataView(memory.buffer);
    view.setBigUint64(IOV, BigInt(addr), true);
    view.setBigUint64(IOV + 8, BigInt(len), true);
  };
  const text = (at: number, n: number) => Buffer.from(new Uint8Array(memory.buffer, at, n)).toString();
  const put = (at: number, s: string) => new Uint8Array(memory.buffer).set(Buffer.from(s), at);
  return { device, memory, connects, ready, failures, nextReady, vector, text, put };
}

function listen(fake: ReturnType<typeof fakeDevice>, handshakeTimeoutMs?: number) {
  const socketPath = path.join(dir, `vm${counter++}.sock`);
  return VsockBackend.listen(addon, socketPath, fake.device, { handshakeTimeoutMs });
}

async function until(check: () => boolean, what: string, ms = 2000): Promise<void> {
  for (const end = Date.now() + ms; !check();) {
    if (Date.now() > end) assert.unreachable(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('vsock config: CIDs 3 to 2^32 - 2, a socket path of 1 to 107 bytes', () => {
  const ok = (cid: number, socketPath = '/tmp/vm.sock') => validateVsockConfig({ cid, socketPath });
  ok(3);
  ok(0xfffffffe);
  ok(3, `/${'x'.repeat(106)}`);
  for (const cid of [0, 1, 2, 0xffffffff, 3.5, -3, NaN]) assert.throws(() => ok(cid), /vsock cid must be an integer from 3 to 4294967294/);
  assert.throws(() => ok(3, ''), /non-empty path/);
  assert.throws(() => ok(3, '/tmp/a\0b'), /without NUL/);
  assert.throws(() => ok(3, `/${'x'.repeat(107)}`), /at most 107 bytes .* got 108/);
});

test('the handshake lines: CONNECT <u32>\\n only, OK <u32>\\n only', () => {
  const parse = (s: string) => parseConnectLine(Buffer.from(s));
  assert.equal(parse('CONNECT 1024\n'), { kind: 'port', port: 1024 });
  assert.equal(parse('CONNECT 4294967295\n'), { kind: 'port', port: 0xffffffff });
  assert.equal(parse('CONNECT 10'), { kind: 'partial' });
  for (const bad of ['CONNECT 4294967296\n', 'CONNECT -1\n', 'connect 1\n', 'CONNECT  1\n', 'CONNECT 1\r\n', 'CONNECT\n', 'CONNECT 1\nX']) {
    assert.equal(parse(bad), { kind: 'invalid' }, JSON.stringify(bad));
  }
  assert.equal(parse('CONNECT 1'.padEnd(40, '0')), { kind: 'invalid' }, 'too long without a newline');
  assert.is(parseOkLine('OK 1024\n'), 1024);
  assert.is(parseOkLine('OK\n'), undefined);
  assert.is(parseOkLine('NO 1\n'), undefined);
});

test('a host client connects through the handshake and exchanges data with the device both ways', async () => {
  const fake = fakeDevice();
  const backend = listen(fake);
  const { callbacks } = backend;
  const connecting = connectVsock(backend.socketPath, 52);
  await until(() => fake.connects.length === 1, 'hostConnect');
  const { handle, port } = fake.connects[0]!;
  assert.is(port, 52);
  callbacks.connected(handle); // the guest answered RESPONSE
  const client = await connecting;

  // guest -> host: the device writes from its memory into the socket.
  fake.put(DATA, 'from the guest');
  fake.vector(DATA, 14);
  assert.is(callbacks.write(handle, IOV, 1), 14);
  // Its first 'data' listener starts the flow, as on any fresh socket.
  const [chunk] = await once(client, 'data') as [Buffer];
  assert.is(chunk.toString(), 'from the guest');

  // host -> guest: readiness is reported only once the device asks for it.
  fake.vector(DATA, 100);
  assert.is(callbacks.read(handle, IOV, 1), EAGAIN);
  client.write('from the host');
  await sleep(30);
  assert.is(fake.ready.length, 0, 'reported before the device asked');
  const ready = fake.nextReady();
  callbacks.watch(handle, true, false);
  await ready;
  assert.equal(fake.ready[0], { handle, readable: true, writable: false });
  assert.is(callbacks.read(handle, IOV, 1), 13);
  assert.is(fake.text(DATA, 13), 'from the host');
  callbacks.watch(handle, false, false);

  // The guest shuts down sending: the client sees the end of the stream.
  const ended = once(client, 'end');
  callbacks.shutdown(handle, 2);
  await ended;
  client.destroy();
  callbacks.close(handle);
  assert.is(callbacks.read(handle, IOV, 1), EBADF, 'a closed handle is forgotten');
  backend.close();
});

test('bytes a client sends right after its CONNECT line stay in the socket for the device', async () => {
  const fake = fakeDevice();
  const backend = listen(fake);
  const client = net.createConnection(backend.socketPath);
  await once(client, 'connect');
  client.write('CONNECT 7\nearly bytes');
  await until(() => fake.connects.length === 1, 'hostConnect');
  const { handle } = fake.connects[0]!;
  fake.vector(DATA, 100);
  assert.is(backend.callbacks.read(handle, IOV, 1), 11);
  assert.is(fake.text(DATA, 11), 'early bytes');
  backend.callbacks.connected(handle);
  const [answer] = await once(client, 'data') as [Buffer];
  assert.is(answer.toString(), 'OK 1024\n');
  client.destroy();
  backend.close();
});

test('connectVsock hands bytes that came with the OK line to the first reader', async () => {
  const server = net.createServer((peer) => {
    peer.once('data', () => peer.write('OK 1025\nfirst bytes'));
  });
  const socketPath = path.join(dir, `fake${counter++}.sock`);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const client = await connectVsock(socketPath, 3);
  await sleep(20); // they are not lost while nobody listens
  const [chunk] = await once(client, 'data') as [Buffer];
  assert.is(chunk.toString(), 'first bytes');
  client.destroy();
  server.close();
});

test('a refusing device, a bad line, a too long line and a silent client are disconnected', async () => {
  const fake = fakeDevice(() => -111);
  const backend = listen(fake, 100);
  try {
    await connectVsock(backend.socketPath, 1024);
    assert.unreachable('connected');
  } catch (e) {
    assert.instance(e, HakoError);
    assert.match((e as Error).message, /refused the connection to guest port 1024/);
  }
  assert.is(backend.socketCount, 0);
  for (const line of ['GET / HTTP/1.0\n', 'CONNECT 1'.padEnd(40, '1'), 'CONNECT 1']) {
    const client = net.createConnection(backend.socketPath);
    await once(client, 'connect');
    client.on('error', () => {}); // closing with bytes unread sends a reset
    const closed = new Promise((resolve) => client.on('close', resolve)); // the silent one's after 100 ms
    client.write(line);
    client.resume();
    await closed;
  }
  assert.is(fake.connects.length, 1, 'only the first client reached the device');
  assert.is(backend.socketCount, 0);
  backend.close();
});

test('guest-initiated connections go to <path>_<port>; a missing one is -ENOENT', async () => {
  const fake = fakeDevice();
  const backend = listen(fake);
  const { callbacks } = backend;
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(`${backend.socketPath}_5000`, resolve));
  const accepted = once(server, 'connection');
  const handle = callbacks.connect(5000);
  assert.ok(handle >= 0, `handle ${handle}`);
  const [peer] = await accepted as [net.Socket];
  fake.put(DATA, 'hi host');
  fake.vector(DATA, 7);
  assert.is(callbacks.write(handle, IOV, 1), 7);
  const [chunk] = await once(peer, 'data') as [Buffer];
  assert.is(chunk.toString(), 'hi host');
  // The peer closes: a watched socket reports readable, and the read sees the end.
  const ready = fake.nextReady();
  callbacks.watch(handle, true, false);
  peer.end();
  await ready;
  fake.vector(DATA, 10);
  assert.is(callbacks.read(handle, IOV, 1), 0);
  callbacks.close(handle);
  assert.is(callbacks.connect(5001), ENOENT);
  server.close();
  backend.close();
});

test('close() releases the listener and every socket and removes the socket file; a live path is refused', async () => {
  await sleep(20); // earlier tests' sockets finish closing
  const before = openFds();
  const fake = fakeDevice();
  const backend = listen(fake);
  assert.throws(() => VsockBackend.listen(addon, backend.socketPath, fake.device), (e: unknown) => isKvmError(e) && e.code === 'EADDRINUSE');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(`${backend.socketPath}_9`, resolve));
  const guestSide = backend.callbacks.connect(9);
  assert.ok(guestSide >= 0);
  const pending = connectVsock(backend.socketPath, 1).catch((e: Error) => e);
  await until(() => fake.connects.length === 1, 'hostConnect');
  const idle = net.createConnection(backend.socketPath); // still in its handshake
  await once(idle, 'connect');
  await until(() => backend.socketCount === 3, 'three sockets');
  backend.close();
  backend.close();
  assert.instance(await pending, HakoError);
  idle.destroy();
  server.close();
  await sleep(20);
  assert.not.ok(fs.existsSync(backend.socketPath), 'socket file left behind');
  assert.is(backend.socketCount, 0);
  assert.is(openFds(), before, 'fds leaked');
});

test('a device model that throws stops the backend and is reported, never thrown into the event loop', async () => {
  const fake = fakeDevice();
  const backend = listen(fake);
  const handle = (() => {
    const server = net.createServer((s) => s.end('x'));
    server.listen(`${backend.socketPath}_1`);
    return new Promise<number>((resolve) => server.on('listening', () => {
      const h = backend.callbacks.connect(1);
      server.close();
      resolve(h);
    }));
  })();
  fake.device.throwOnReady = true;
  backend.callbacks.watch(await handle, true, false);
  await until(() => fake.failures.length === 1, 'the failure');
  assert.match(fake.failures[0]!.message, 'device model bug');
  assert.is(backend.socketCount, 0);
  assert.not.ok(fs.existsSync(backend.socketPath));
});

// Watches never keep the event loop alive (a running VM does): this timer does, while tests wait.
const keepAlive = setInterval(() => {}, 60_000);
test.after(() => {
  clearInterval(keepAlive);
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
