// virtio-vsock with the real guest: a clone of a template (which carries a
// vsock device) restored with its own socket path and CID. The guest's
// driver binds to the device; a host client's CONNECT travels through the
// device model to the guest kernel, which refuses a port nobody listens on;
// and the VM leaves no fd or socket file behind. Runs against its own template
// cache (one cold boot).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { HakoError } from '../../host/errors.js';
import { repoRoot } from '../../host/native.js';
import { isPvmHost } from '../../host/vmm/kvm.js';
import { Vm } from '../../host/vmm/vm.js';
import { ensureTemplate } from '../../host/template/create.js';
import { bundledTemplateSpec } from '../../host/template/spec.js';
import { startClone } from '../../host/template/clone.js';
import { connectVsock } from '../../host/vsock/client.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-vsock-vm-'));
/** The template cache of these tests (HAKO_CACHE_DIR for the CLI): the first test makes the template. */
const templates = path.join(dir, 'templates');
const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');
const openFds = () => fs.readdirSync('/proc/self/fd').length;

/** hako-vsockperf's data pattern (guest/tools/vsockperf.c): byte i is (i * 131 + 7) mod 256. */
function pattern(length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 131 + 7) & 0xff;
  return bytes;
}

/** Collects everything `socket` sends until it ends (at most 60 s). */
function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stream not ended after 60 s, ${Buffer.concat(chunks).length} bytes so far`)), 60_000);
    socket.on('end', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)); }).on('error', reject);
  });
}

/** Resolves once `check(output)` holds; the console output so far is kept in `output.text`. */
function consoleWatcher() {
  const output = { text: '' };
  let waiters: { check: (s: string) => boolean; resolve: () => void }[] = [];
  const feed = (chunk: Buffer) => {
    output.text += chunk.toString('latin1');
    waiters = waiters.filter((w) => {
      if (!w.check(output.text)) return true;
      w.resolve();
      return false;
    });
  };
  const until = (check: (s: string) => boolean, what: string, ms = 120_000) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; console:\n${output.text.slice(-2000)}`)), ms);
    const done = () => { clearTimeout(timer); resolve(); };
    if (check(output.text)) done();
    else waiters.push({ check, resolve: done });
  });
  return { output, feed, until };
}

test('a restored clone has a working vsock device: driver bound, streams both ways, an unused port refused, nothing leaked', async () => {
  const spec = bundledTemplateSpec({ vcpus: 1, memoryMiB: 256 }, isPvmHost());
  const template = await ensureTemplate(spec, templates);
  const socketPath = path.join(dir, 'vm.sock');
  const before = openFds();
  const console = consoleWatcher();
  const vm = await Vm.restore(template.dir, { vsock: { socketPath, cid: 42 }, console: console.feed });
  assert.ok(fs.statSync(socketPath).isSocket(), 'the VM listens on its socket');
  const exit = startClone(vm, { initMode: 'shell' });
  try {
    await console.until((s) => s.includes('hako-init: ready'), 'the shell');
    vm.sendConsoleInput(Buffer.from('echo "T-DRV-$((40+2)) $(ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport | grep -c virtio)"\n'));
    await console.until((s) => /T-DRV-42 \d/.test(s), 'the driver check');
    assert.match(console.output.text, /T-DRV-42 1/, 'vmw_vsock_virtio_transport bound to one device');

    // Host -> guest -> host: hako-vsockperf echoes what a host client sends, more than one credit window.
    vm.sendConsoleInput(Buffer.from('hako-vsockperf listen 5000 &\n'));
    await console.until((s) => s.includes('hako-vsockperf: listening port=5000'), 'the guest listener');
    const echo = await connectVsock(socketPath, 5000, { timeoutMs: 60_000 });
    const sent = pattern(600 * 1024);
    const echoed = readAll(echo);
    echo.end(sent);
    assert.ok((await echoed).equals(sent), 'the echo differs from what was sent');
    echo.destroy();

    // Guest -> host: the guest connects to host port 6000, i.e. the Unix socket <path>_6000.
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(`${socketPath}_6000`, resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    vm.sendConsoleInput(Buffer.from('hako-vsockperf send 6000 1048576; echo "T-SEND-$((40+2)) $?"\n'));
    const peer = await accepted;
    const received = await readAll(peer);
    peer.end();
    await console.until((s) => /T-SEND-42 \d/.test(s), 'the guest sender');
    assert.match(console.output.text, /T-SEND-42 0/);
    assert.ok(received.equals(pattern(1048576)), `the guest sent ${received.length} bytes, or other ones than expected`);
    server.close();

    // No guest program listens on this port: the guest answers the request with a reset.
    const refused = await connectVsock(socketPath, 4242, { timeoutMs: 60_000 }).then(() => undefined, (e: unknown) => e);
    assert.instance(refused, HakoError, String(refused));
    assert.match((refused as Error).message, /refused the connection to guest port 4242/);
  } finally {
    vm.sendConsoleInput(Buffer.from('exit\n'));
    const timer = setTimeout(() => vm.stop('test timed out'), 60_000);
    const end = await exit;
    clearTimeout(timer);
    assert.is(end.kind, 'poweroff', end.detail);
  }
  assert.not.ok(fs.existsSync(socketPath), 'the socket file was removed');
  assert.is(openFds(), before, 'the VM left fds open');
});

test('restore refuses a reserved CID before starting anything', async () => {
  const spec = bundledTemplateSpec({ vcpus: 1, memoryMiB: 256 }, isPvmHost());
  const template = await ensureTemplate(spec, templates);
  try {
    await Vm.restore(template.dir, { vsock: { socketPath: path.join(dir, 'x.sock'), cid: 2 } });
    assert.unreachable('restored');
  } catch (e) {
    assert.instance(e, HakoError);
    assert.match((e as Error).message, /vsock cid must be an integer from 3 to 4294967294/);
  }
});

test('hako boot --vsock: the clone listens on the path; a CONNECT reaches the guest, which refuses an unused port', async () => {
  const socketPath = path.join(dir, 'cli.sock');
  const child = spawn(process.execPath, [cli, 'boot', '--vsock', socketPath, '--cid', '7', '--init-mode', 'shell'], {
    stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, HAKO_CACHE_DIR: dir },
  });
  const console = consoleWatcher();
  let stderr = '';
  child.stdout.on('data', console.feed);
  child.stderr.on('data', (d) => { stderr += d; });
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    await console.until((s) => s.includes('hako-init: ready'), 'the shell');
    assert.not.match(stderr, /creating VM template/, 'the template of the first test was reused');
    const refused = await connectVsock(socketPath, 4242, { timeoutMs: 60_000 }).then(() => undefined, (e: unknown) => e);
    assert.match(String(refused), /refused the connection to guest port 4242/);
  } finally {
    child.stdin.end('exit\n');
  }
  assert.is(await closed, 0, stderr);
  assert.not.ok(fs.existsSync(socketPath), 'the socket file was removed');
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
