// The containerd shim (issue 8): Debian's containerd, started by the test
// with its own root and socket, runs busybox containers with
// `ctr --runtime io.containerd.hako.v2`. Each container costs a VM and seconds
// of emulated guest kernel time here, so the tests are few and share one
// containerd; each checks that no shim, mount or socket of ours is left.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { TASK_SERVICE, encode } from '../../host/shim/proto.js';
import { Client } from '../../host/ttrpc/client.js';
import { Containerd, IMAGE, RUNTIME, leftovers, type CtrResult } from './containerd.js';

let containerd: Containerd;

const run = (id: string, args: string[], flags: string[] = [], timeoutMs?: number) =>
  containerd.ctr(['run', '--rm', '--runtime', RUNTIME, ...flags, IMAGE, id, ...args], timeoutMs ? { timeoutMs } : {});

function expectClean(what: string): void {
  assert.equal(leftovers(containerd), [], `${what} left these behind`);
}

/** Calls the task service of `id`'s shim directly, for methods Debian's ctr has no command for (Update). */
async function callShim(id: string, method: string, type: string, request: object): Promise<void> {
  const address = fs.readFileSync(path.join(containerd.dir, 'state/io.containerd.runtime.v2.task/hako-test', id, 'address'), 'utf8');
  const socket = net.connect(address.trim().replace(/^unix:\/\//, ''));
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const client = new Client(socket);
  try {
    await client.call(TASK_SERVICE, method, encode(type, request), { timeoutMs: 60_000 });
  } finally {
    client.close();
  }
}

function check(r: CtrResult, code: number, what: string): void {
  assert.is(r.code, code, `${what}: exit ${r.code}, stderr: ${r.stderr}\ncontainerd:\n${containerd.output.slice(-3000)}`);
}

test.before(async () => {
  containerd = await Containerd.start();
});

test.after(async () => {
  await containerd?.stop();
});

test('ctr run --rm echo hello: prints hello, exits 0, events in order, nothing left behind', async () => {
  const events = containerd.events();
  const r = await run('echo', ['echo', 'hello']);
  check(r, 0, 'echo hello');
  assert.is(r.stdout, 'hello\n');
  const topics = (await events.stop()).filter((t) => t.startsWith('/tasks/'));
  assert.equal(topics, ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
  expectClean('ctr run --rm');
});

test("sh -c 'exit 3' exits 3; stdin reaches the process; ctr run --mount shares a host directory", async () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-shim-volume-'));
  fs.writeFileSync(path.join(data, 'f'), 'from the host\n');
  try {
    const r = await containerd.ctr(['run', '--rm', '--runtime', RUNTIME, '--mount', `type=bind,src=${data},dst=/data,options=rbind:ro`,
      IMAGE, 'exit3', 'sh', '-c', 'cat /data/f; cat; exit 3'], { stdin: 'from stdin\n' });
    check(r, 3, 'exit 3');
    assert.is(r.stdout, 'from the host\nfrom stdin\n');
  } finally {
    fs.rmSync(data, { recursive: true, force: true });
  }
  expectClean('a failing container');
});

test('two tasks at once; ctr task exec into one; ctr task kill -s KILL gives 137', async () => {
  const sleeper = run('sleeper', ['sleep', '1000']);
  const echo = run('echo2', ['sh', '-c', 'echo second']);
  // The sleeper's task exists once its ctr run created it.
  for (let i = 0; ; i++) {
    const list = await containerd.ctr(['task', 'ls']);
    if (/sleeper\s+\d+\s+RUNNING/.test(list.stdout)) break;
    assert.ok(i < 600, `the sleeper never ran: ${list.stdout}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const exec = await containerd.ctr(['task', 'exec', '--exec-id', 'e1', 'sleeper', 'sh', '-c', 'echo in the sleeper; exit 5']);
  check(exec, 5, 'ctr task exec');
  assert.is(exec.stdout, 'in the sleeper\n');
  const second = await echo;
  check(second, 0, 'the second task');
  assert.is(second.stdout, 'second\n');
  check(await containerd.ctr(['task', 'kill', '-s', 'KILL', 'sleeper']), 0, 'ctr task kill');
  check(await sleeper, 137, 'the killed sleeper');
  expectClean('two tasks, an exec and a kill');
});

test("containers of one pod (group annotation) share the pod's shim and VM; ctr task ps and metrics", async () => {
  const group = ['--annotation', 'io.containerd.hako.v2.group=pod1'];
  const first = run('pod-a', ['sleep', '1000'], group);
  for (let i = 0; !/pod-a\s+\d+\s+RUNNING/.test((await containerd.ctr(['task', 'ls'])).stdout); i++) {
    assert.ok(i < 600, 'pod-a never ran');
    await new Promise((r) => setTimeout(r, 200));
  }
  const second = await run('pod-b', ['echo', 'b'], group);
  check(second, 0, 'the second container of the pod');
  assert.is(second.stdout, 'b\n');
  assert.is(leftovers(containerd).filter((l) => l.startsWith('process') && l.includes(' serve')).length, 1, 'one shim serves the pod');
  const ps = await containerd.ctr(['task', 'ps', 'pod-a']);
  check(ps, 0, 'ctr task ps');
  assert.match(ps.stdout, /^PID\s+INFO\n\d+\s+-\n/);
  const metrics = await containerd.ctr(['task', 'metrics', 'pod-a']);
  check(metrics, 0, 'ctr task metrics');
  assert.match(metrics.stdout, /pids\.current\s+1\b/);
  check(await containerd.ctr(['task', 'kill', '-s', 'KILL', 'pod-a']), 0, 'ctr task kill');
  check(await first, 137, 'the killed pod-a');
  expectClean('a pod of two containers');
});

test('a shim (and so VMM) that dies: containerd reports the task exited with 137, its delete cleans up', async () => {
  check(await containerd.ctr(['run', '-d', '--runtime', RUNTIME, IMAGE, 'doomed', 'sleep', '1000']), 0, 'ctr run -d');
  const events = containerd.events();
  const shim = leftovers(containerd).find((l) => l.startsWith('process') && l.includes(' serve'));
  assert.ok(shim, 'the shim runs');
  process.kill(Number(/^process (\d+):/.exec(shim)![1]), 'SIGKILL');
  for (let i = 0; (await containerd.ctr(['task', 'ls', '-q'])).stdout.includes('doomed'); i++) {
    assert.ok(i < 100, 'containerd kept the task of a dead shim');
    await new Promise((r) => setTimeout(r, 200));
  }
  const exit = (await events.stop(true)).find((e) => e.startsWith('/tasks/exit'));
  assert.match(exit ?? '', /"exit_status":137/);
  check(await containerd.ctr(['container', 'rm', 'doomed']), 0, 'ctr container rm');
  expectClean('a dead shim');
});

test('ctr task pause: PAUSED until ctr task resume, events published; Update sets limits; the task then ends normally', async () => {
  const events = containerd.events();
  // The shell takes seconds to start in the guest, and a SIGTERM before its trap is set is lost (it is pid 1):
  // it says when it is ready in a shared directory.
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-shim-pause-'));
  const task = run('frozen', ['sh', '-c', 'trap "echo bye; exit 0" TERM; touch /data/ready; while :; do sleep 0.2; done'],
    ['--mount', `type=bind,src=${data},dst=/data,options=rbind:rw`], 300_000);  // many guest round trips: a slow host
  for (let i = 0; !fs.existsSync(path.join(data, 'ready')); i++) {
    assert.ok(i < 1000, 'the task never got ready');
    await new Promise((r) => setTimeout(r, 200));
  }
  check(await containerd.ctr(['task', 'pause', 'frozen']), 0, 'ctr task pause');
  assert.match((await containerd.ctr(['task', 'ls'])).stdout, /frozen\s+\d+\s+PAUSED/);
  check(await containerd.ctr(['task', 'resume', 'frozen']), 0, 'ctr task resume');
  assert.match((await containerd.ctr(['task', 'ls'])).stdout, /frozen\s+\d+\s+RUNNING/);
  // containerd sends the OCI LinuxResources as JSON in an Any, as its typeurl package does.
  const resources = { memory: { limit: 64 << 20 }, cpu: { quota: 50000, period: 100000, shares: 512 }, pids: { limit: 50 } };
  await callShim('frozen', 'Update', 'containerd.task.v2.UpdateTaskRequest', {
    id: 'frozen', resources: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify(resources)) },
  });
  const metrics = await containerd.ctr(['task', 'metrics', 'frozen']);
  check(metrics, 0, 'ctr task metrics');
  assert.match(metrics.stdout, new RegExp(`memory\\.usage_limit\\s+${64 << 20}\\b`));
  check(await containerd.ctr(['task', 'kill', '-s', 'TERM', 'frozen']), 0, 'ctr task kill -s TERM');
  const r = await task;
  fs.rmSync(data, { recursive: true, force: true });
  check(r, 0, 'the resumed task');
  assert.is(r.stdout, 'bye\n');
  const topics = (await events.stop()).filter((t) => t.startsWith('/tasks/'));
  assert.equal(topics, ['/tasks/create', '/tasks/start', '/tasks/paused', '/tasks/resumed', '/tasks/exit', '/tasks/delete']);
  expectClean('a paused and resumed task');
});

test('ctr run -t: the process has a terminal', async () => {
  // ctr wants a terminal of its own for -t: script(1) gives it one.
  const r = await new Promise<CtrResult>((resolve) => {
    const ctr = ['ctr', '--address', containerd.socket, '--namespace', 'hako-test', 'run', '--rm', '-t', '--runtime', RUNTIME, IMAGE, 'tty', 'sh', '-c', 'tty; exit 4'];
    const child = spawn('script', ['-qec', ctr.join(' '), '/dev/null'], { env: containerd.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  check(r, 4, 'ctr run -t');
  assert.match(r.stdout, /\/dev\/pts\/\d+/);
  expectClean('ctr run -t');
});

test.run();
