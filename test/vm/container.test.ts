// Containers in a sandbox: a clone of the bundled guest's template whose agent
// runs them with crun (issue 5). One sandbox serves the whole file; each test
// creates and removes its own containers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Container } from '../../host/sandbox/container.js';
import { Sandbox } from '../../host/sandbox/sandbox.js';

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-container-test-'));
let sandbox: Sandbox;
const openFds = () => fs.readdirSync('/proc/self/fd').length;
let fdsBefore = 0;
let guestConsole = '';

function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

test.before(async () => {
  fdsBefore = openFds();
  sandbox = await Sandbox.create({
    stateDir,
    console: (c) => { guestConsole = (guestConsole + c.toString('latin1')).slice(-8192); },
    progress: (line) => process.stderr.write(`${line}\n`),
  });
});

test.after(async () => {
  await sandbox?.destroy();
});

test('echo hello in a busybox container: stdout "hello", stderr empty, exit code 0', async () => {
  const c = await sandbox.createContainer({ id: 'echo', args: ['echo', 'hello'] });
  const out = collect(c.stdout);
  const err = collect(c.stderr);
  await c.start();
  assert.equal(await c.wait(), { exitCode: 0, oomKilled: false });
  assert.is((await out).toString(), 'hello\n', `guest console:\n${guestConsole}`);
  assert.is((await err).toString(), '');
  await c.remove();
});

// Containers cost several crun calls, each seconds of emulated guest kernel time on PVM hosts: the tests below share
// one long-running container and exec into it.
let pod: Container;

test('exec processes into a running container: exit codes 0, 1 and 42 exactly, stdout and stderr apart, confined to its root', async () => {
  pod = await sandbox.createContainer({ id: 'pod', args: ['sleep', '1000'] });
  await pod.start();
  for (const [script, exitCode, stdout, stderr] of [
    ['echo exec-$((6*7))', 0, 'exec-42\n', ''],
    ['exit 1', 1, '', ''],
    // An exec'd process runs in the container's root file system, not the guest's (where the agent lives).
    ['test -e /bin/busybox && test ! -e /sbin/hako-agent', 0, '', ''],
    ['echo out; echo err >&2; exit 42', 42, 'out\n', 'err\n'],
  ] as const) {
    const p = await pod.exec({ args: ['sh', '-c', script] });
    const out = collect(p.stdout);
    const err = collect(p.stderr);
    assert.equal(await p.wait(), { exitCode, oomKilled: false }, script);
    assert.is((await out).toString(), stdout, script);
    assert.is((await err).toString(), stderr, script);
  }
  assert.ok((await pod.processes()).length >= 1);
  const stats = await pod.stats();
  assert.ok(stats.pidsCurrent >= 1 && stats.memoryCurrent > 0, JSON.stringify(stats));
});

test('a TTY session reports the size set on resize', async () => {
  const p = await pod.exec({ args: ['sh'], tty: true, stdin: true });
  const out = collect(p.stdout);
  await p.resize({ rows: 33, cols: 111 });
  p.stdin!.write('stty size; exit 3\n');
  assert.is((await p.wait()).exitCode, 3);
  assert.match((await out).toString(), /33 111/);
});

test('10 MiB through stdin to cat in a second container come back byte-identical', async () => {
  const data = randomBytes(10 << 20);
  const c = await sandbox.createContainer({ id: 'cat', args: ['cat'], stdin: true });
  const out = collect(c.stdout);
  await c.start();
  c.stdin!.end(data);
  const back = await out;
  assert.is(back.length, data.length);
  assert.is(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'));
  assert.equal(await c.wait(), { exitCode: 0, oomKilled: false });
  await c.remove();
});

test('a container killed with SIGKILL exits with 137', async () => {
  await pod.kill('SIGKILL');
  assert.equal(await pod.wait(), { exitCode: 137, signal: 'SIGKILL', oomKilled: false });
  await pod.remove();
});

test('an OOM-killed container is reported as OOM', async () => {
  // tail keeps the whole "line" of /dev/zero in memory: it grows until the cgroup limit kills it.
  const c = await sandbox.createContainer({ id: 'oom', args: ['tail', '/dev/zero'], memoryLimitBytes: 16 << 20 });
  await c.start();
  assert.equal(await c.wait(), { exitCode: 137, signal: 'SIGKILL', oomKilled: true });
  await c.remove();
});

test('destroy leaves no fd, socket or state directory behind', async () => {
  const dir = sandbox.dir;
  await sandbox.destroy();
  assert.not.ok(fs.existsSync(dir));
  assert.is(openFds(), fdsBefore);
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test.run();
