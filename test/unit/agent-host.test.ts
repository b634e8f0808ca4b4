// The guest agent (guest/agent/) on the development host, without a VM: built with its build.sh, run with
// --listen unix: in a private mount namespace (this host's /sys/fs/cgroup is cgroup v1; the agent mounts cgroup2
// on the emptied mount point), driven by the host's AgentClient, running busybox containers with crun from an ext4
// image on a loop device. Needs root, crun, busybox-static, g++, mkfs.ext4, losetup and unshare; skipped otherwise.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentClient } from '../../host/agent/client.js';
import type { ProcessId } from '../../host/agent/messages.js';
import { Code } from '../../host/ttrpc/status.js';
import { rejects } from './ttrpc-rejects.js';

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const tools = ['/usr/bin/crun', '/bin/busybox', '/usr/bin/g++', '/usr/sbin/mkfs.ext4', '/usr/sbin/losetup', '/usr/bin/unshare'];
const missing = tools.filter((t) => !fs.existsSync(t));
const usable = process.getuid?.() === 0 && missing.length === 0;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-agent-'));
const socketPath = path.join(dir, 'agent.sock');
let agentProcess: ChildProcess | undefined;
let agent: AgentClient;
let loopDevice = '';
let agentLog = '';

function run(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** An OCI spec from `crun spec` running `args`; without device rules, which need BPF (RLIMIT_MEMLOCK) here. */
function ociSpec(args: string[]): Buffer {
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  spec.process.args = args;
  delete spec.linux.resources;
  return Buffer.from(JSON.stringify(spec));
}

const rootfs = () => ({ device: loopDevice, fstype: 'ext4' });
const processJson = (args: string[]) => Buffer.from(JSON.stringify({ args, cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } }));

async function readAll(id: ProcessId, stream: 'stdout' | 'stderr' = 'stdout'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (;;) {
    const request = { ...id, maxBytes: 1 << 20 };
    const { data } = await (stream === 'stdout' ? agent.readStdout(request) : agent.readStderr(request));
    if (data.length === 0) return Buffer.concat(chunks);
    chunks.push(data);
  }
}

async function run1(containerId: string, args: string[], stdin = false): Promise<void> {
  await agent.createContainer({ containerId, ociSpec: ociSpec(args), rootfs: rootfs(), stdio: { stdin } });
  await agent.startContainer({ containerId });
}


test.before(async () => {
  if (!usable) return;
  run(path.join(repo, 'guest/agent/build.sh'), [dir]);
  const root = path.join(dir, 'rootfs');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'echo', 'cat', 'sleep', 'true', 'sha256sum', 'stty']) fs.symlinkSync('busybox', path.join(root, 'bin', applet));
  run('/usr/sbin/mkfs.ext4', ['-q', '-d', root, path.join(dir, 'rootfs.img'), '16M']);
  loopDevice = run('/usr/sbin/losetup', ['-f', '--show', path.join(dir, 'rootfs.img')]);
  run('/usr/bin/crun', ['spec', '-b', dir]);
  agentProcess = spawn('/usr/bin/unshare', ['-m', 'sh', '-c',
    `umount -l /sys/fs/cgroup 2>/dev/null; exec ${dir}/hako-agent --listen unix:${socketPath} --run-dir ${dir}/run`],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  agentProcess.stderr!.on('data', (d: Buffer) => { agentLog += d; });
  for (let i = 0; !fs.existsSync(socketPath); i++) {
    if (i > 100) throw new Error(`the agent did not start: ${agentLog}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  agent = new AgentClient(net.connect(socketPath));
});

test.after(() => {
  agent?.close();
  agentProcess?.kill('SIGKILL');
  if (loopDevice) spawnSync('/usr/sbin/losetup', ['-d', loopDevice]);
  fs.rmSync(dir, { recursive: true, force: true });
});

if (!usable) {
  test('agent host tests skipped (need root and ' + tools.join(', ') + ')', () => {});
} else {
  test('Version names the protocol and the kernel', async () => {
    const v = await agent.version();
    assert.is(v.protocol, 1);
    assert.is(v.kernelRelease, os.release());
  });

  test('a container prints hello, then end of stream, and exits 0', async () => {
    await run1('hello', ['echo', 'hello']);
    assert.is((await readAll({ containerId: 'hello' })).toString(), 'hello\n');
    assert.equal(await agent.waitProcess({ containerId: 'hello' }), { exitCode: 0, signal: 0, oomKilled: false });
    await agent.removeContainer({ containerId: 'hello' });
    await rejects(agent.waitProcess({ containerId: 'hello' }), Code.NOT_FOUND, /no container 'hello'/);
  });

  test('exit status 1 and stderr survive the exit until read', async () => {
    await run1('fail', ['sh', '-c', 'echo oops >&2; exit 1']);
    assert.is((await agent.waitProcess({ containerId: 'fail' })).exitCode, 1);
    assert.is((await readAll({ containerId: 'fail' }, 'stderr')).toString(), 'oops\n');
    await agent.removeContainer({ containerId: 'fail' });
  });

  test('SIGKILL gives 137 to a parked WaitProcess while other calls go on', async () => {
    await run1('sleeper', ['sleep', '1000']);
    const waiting = agent.waitProcess({ containerId: 'sleeper' });
    assert.is((await agent.listProcesses({ containerId: 'sleeper' })).pids.length, 1);
    await agent.signalProcess({ containerId: 'sleeper', signal: 9 });
    assert.equal(await waiting, { exitCode: 137, signal: 9, oomKilled: false });
    await agent.removeContainer({ containerId: 'sleeper' });
  });

  test('10 MiB through cat arrive intact', async () => {
    await run1('cat', ['cat'], true);
    const data = randomBytes(10 << 20);
    const output = readAll({ containerId: 'cat' });
    for (let offset = 0; offset < data.length; offset += 1 << 20) {
      const { written } = await agent.writeStdin({ containerId: 'cat', data: data.subarray(offset, offset + (1 << 20)) });
      assert.is(written, 1 << 20);
    }
    await agent.closeStdin({ containerId: 'cat' });
    const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.is(hash(await output), hash(data));
    await agent.removeContainer({ containerId: 'cat' });
  });

  test('exec: stdout, stderr and the exact exit status; a tty with its size', async () => {
    await run1('box', ['sleep', '1000']);
    const e1 = { containerId: 'box', execId: 'e1' };
    await agent.execProcess({ ...e1, process: processJson(['sh', '-c', 'echo out; echo err >&2; exit 7']) });
    assert.is((await readAll(e1)).toString(), 'out\n');
    assert.is((await readAll(e1, 'stderr')).toString(), 'err\n');
    assert.is((await agent.waitProcess(e1)).exitCode, 7);
    await rejects(agent.execProcess({ ...e1, process: processJson(['true']) }), Code.ALREADY_EXISTS, /'e1' already exists/);

    const t1 = { containerId: 'box', execId: 't1' };
    await agent.execProcess({ ...t1, process: processJson(['sh', '-c', 'read x; stty size; echo got $x']), stdio: { tty: true, stdin: true } });
    await agent.resizeTty({ ...t1, rows: 33, cols: 99 });
    await agent.writeStdin({ ...t1, data: Buffer.from('abc\n') });
    assert.match((await readAll(t1)).toString(), /33 99\r\ngot abc\r\n$/);
    assert.is((await agent.waitProcess(t1)).exitCode, 0);
    await agent.removeContainer({ containerId: 'box' });
  });

  test('a paused container runs nothing until resumed; Update checks its JSON', async () => {
    await run1('frozen', ['cat'], true);
    const id = { containerId: 'frozen' };
    await agent.pauseContainer(id);
    await rejects(agent.pauseContainer(id), Code.FAILED_PRECONDITION, /already paused/);
    await rejects(agent.execProcess({ ...id, execId: 'e', process: processJson(['true']) }), Code.FAILED_PRECONDITION, /is paused/);
    await agent.writeStdin({ ...id, data: Buffer.from('thawed\n') });
    await rejects(agent.readStdout({ ...id, maxBytes: 100 }, { timeoutMs: 300 }), Code.DEADLINE_EXCEEDED, /deadline|no response/);
    await agent.resumeContainer(id);
    await rejects(agent.resumeContainer(id), Code.FAILED_PRECONDITION, /not paused/);
    assert.is((await agent.readStdout({ ...id, maxBytes: 100 })).data.toString(), 'thawed\n');

    // This host's controllers belong to cgroup v1, so only the checks run here (the VM tests apply limits).
    await agent.updateContainer({ ...id, resources: Buffer.from('{}') });
    const update = (json: string) => agent.updateContainer({ ...id, resources: Buffer.from(json) });
    await rejects(update('{"cpu":{"quota":"1"}}'), Code.INVALID_ARGUMENT, /resources\.cpu\.quota is not a 64-bit integer/);
    await rejects(update('{"memory":{"limit":-5}}'), Code.INVALID_ARGUMENT, /resources\.memory\.limit -5 is negative/);
    await rejects(update('{"cpu":{"shares":1}}'), Code.INVALID_ARGUMENT, /resources\.cpu\.shares 1 is not in 2\.\.262144/);
    await rejects(update('{"pids":[]}'), Code.INVALID_ARGUMENT, /resources\.pids is not an object/);
    await rejects(update('{"memory":'), Code.INVALID_ARGUMENT, /resources is not valid JSON/);
    await rejects(agent.pauseContainer({ containerId: 'nope' }), Code.NOT_FOUND, /no container 'nope'/);

    await agent.closeStdin(id);
    assert.is((await agent.waitProcess(id)).exitCode, 0);
    await rejects(agent.pauseContainer(id), Code.FAILED_PRECONDITION, /has exited/);
    await agent.removeContainer(id);

    // The shell is the container's pid 1: a TERM before its trap is set would be ignored, so wait for "ready".
    await run1('trap', ['sh', '-c', 'trap "echo bye; exit 0" TERM; echo ready; while :; do sleep 0.2; done']);
    let said = '';
    while (!said.includes('ready')) said += (await agent.readStdout({ containerId: 'trap', maxBytes: 100 })).data.toString();
    await agent.pauseContainer({ containerId: 'trap' });
    await agent.resumeContainer({ containerId: 'trap' });
    await agent.signalProcess({ containerId: 'trap', signal: 15 });
    assert.equal(await agent.waitProcess({ containerId: 'trap' }, { timeoutMs: 5000 }), { exitCode: 0, signal: 0, oomKilled: false });
    await agent.removeContainer({ containerId: 'trap' });
  });

  test('bad requests fail with the code and the field', async () => {
    await rejects(agent.startContainer({ containerId: '../x' }), Code.INVALID_ARGUMENT, /container_id '\.\.\/x' is not a valid id/);
    await rejects(agent.createContainer({ containerId: 'j', ociSpec: Buffer.from('{"process":'), rootfs: rootfs() }),
      Code.INVALID_ARGUMENT, /oci_spec is not valid JSON/);
    await rejects(agent.createContainer({ containerId: 'j', ociSpec: ociSpec(['true']), rootfs: { device: '/etc/passwd', fstype: 'ext4' } }),
      Code.INVALID_ARGUMENT, /rootfs.device '\/etc\/passwd' is not a block device/);
    await rejects(agent.createContainer({ containerId: 'j', ociSpec: ociSpec([]), rootfs: rootfs() }),
      Code.INVALID_ARGUMENT, /"process" has no "args" array/);
    await rejects(agent.readStdout({ containerId: 'nope', maxBytes: 0 }), Code.INVALID_ARGUMENT, /max_bytes 0/);
  });

  test('a parked call past its deadline is answered DEADLINE_EXCEEDED and consumes nothing', async () => {
    await run1('late', ['sh', '-c', 'sleep 1; echo late']);
    await rejects(agent.readStdout({ containerId: 'late', maxBytes: 100 }, { timeoutMs: 100 }), Code.DEADLINE_EXCEEDED, /deadline|no response/);
    assert.is((await readAll({ containerId: 'late' })).toString(), 'late\n');
    await agent.removeContainer({ containerId: 'late' });
  });
}

test.run();
