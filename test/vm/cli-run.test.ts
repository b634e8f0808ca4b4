// The `hako run` family end to end: real sandboxes run by the CLI, reached
// from other hako processes through their state directory (issue 6). Each
// sandbox takes seconds (a template clone plus a container start).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { bundledGuest } from '../../host/guest.js';
import { repoRoot } from '../../host/native.js';
import { listSandboxes, type SandboxEntry } from '../../host/sandbox/state.js';

const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-cli-vm-'));
let n = 0;

interface Result { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Starts `hako ARGS` with its own state directory (unless given); `done` resolves when it exits. */
function hako(args: string[], opts: { input?: string; state?: string } = {}) {
  const state = opts.state ?? path.join(tmp, `s${n++}`);
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, HAKO_STATE_DIR: state },
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => { stdout += d; });
  child.stderr!.on('data', (d) => { stderr += d; });
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  const done = new Promise<Result>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, state, output: () => stdout };
}

async function waitFor(condition: () => boolean, timeoutMs = 120_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition(); await sleep(100)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${condition}`);
  }
}

/** The running sandbox in `state`, once its `hako run` has started the container and written its record. */
async function running(state: string): Promise<SandboxEntry> {
  let entry: SandboxEntry | undefined;
  await waitFor(() => (entry = listSandboxes(state).find((e) => e.running)) !== undefined);
  return entry!;
}

test('hako run -- sh -c "echo hi; exit 3": prints hi, exits 3, leaves no state', async () => {
  const r = await hako(['run', '--', 'sh', '-c', 'echo hi; echo oops >&2; exit 3']).done;
  assert.is(r.code, 3, r.stderr);
  assert.is(r.stdout, 'hi\n');
  assert.match(r.stderr, /oops\n/);
  const workdir = await hako(['run', '-w', '/tmp', '-u', '1000:100', 'sh', '-c', 'pwd; id -u; id -g']).done;
  assert.is(workdir.code, 0, workdir.stderr);
  assert.is(workdir.stdout, '/tmp\n1000\n100\n');
});

test('hako run -i -- cat: stdin piped through the container', async () => {
  const input = 'line one\nline two\n'.repeat(1000);
  const { done, state } = hako(['run', '-i', '-e', 'X=1', '--', 'cat'], { input });
  const r = await done;
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, input);
  assert.equal(fs.readdirSync(state), [], 'the sandbox is destroyed');
});

/** An OCI layout of the bundled busybox tree plus `extra` files, whose config says how to run it. */
function busyboxImage(config: object, extra: Record<string, string> = {}): string {
  const tree = path.join(tmp, `tree${n++}`);
  fs.cpSync(bundledGuest().rootfs!, tree, { recursive: true, verbatimSymlinks: true });
  for (const [name, body] of Object.entries(extra)) fs.writeFileSync(path.join(tree, name), body);
  const layout = path.join(tmp, `image${n++}`);
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  const blob = (bytes: Buffer, mediaType: string) => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
  };
  const layer = spawnSync('tar', ['-C', tree, '-c', '.'], { maxBuffer: 1 << 30 }).stdout;
  const layerDesc = blob(layer, 'application/vnd.oci.image.layer.v1.tar');
  const configDesc = blob(Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config,
    rootfs: { type: 'layers', diff_ids: [layerDesc.digest] },
  })), 'application/vnd.oci.image.config.v1+json');
  const manifest = blob(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: [layerDesc],
  })), 'application/vnd.oci.image.manifest.v1+json');
  fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion": "1.0.0"}');
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  fs.rmSync(tree, { recursive: true });
  return layout;
}

test('--image: Entrypoint, Cmd, Env and WorkingDir are the defaults; a command replaces Cmd', async () => {
  const image = busyboxImage({
    Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo $MSG in $(pwd)'], Env: ['MSG=from-image', 'OTHER=x'], WorkingDir: '/etc',
  }, { marker: 'in the image\n' });
  const defaults = await hako(['run', '--image', image]).done;
  assert.is(defaults.code, 0, defaults.stderr);
  assert.is(defaults.stdout, 'from-image in /etc\n');
  const given = await hako(['run', '--image', `${image}:latest`, '-e', 'MSG=flag', '-w', '/', '--', 'echo $MSG $OTHER in $(pwd); cat /marker']).done;
  assert.is(given.code, 0, given.stderr);
  assert.is(given.stdout, 'flag x in /\nin the image\n');
});

test('--rootfs DIR and -t: the container sees the tree, and a terminal', async () => {
  const tree = path.join(tmp, 'rootfs-tree');
  fs.cpSync(bundledGuest().rootfs!, tree, { recursive: true, verbatimSymlinks: true });
  fs.writeFileSync(path.join(tree, 'marker'), 'from --rootfs\n');
  const r = await hako(['run', '--rootfs', tree, '-t', '--', 'sh', '-c', 'cat /marker; tty']).done;
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^from --rootfs\r\n\/dev\/pts\/\d+\r\n$/);
});

test('ps, exec and kill reach a running `hako run -- sleep 1000` from other processes', async () => {
  const sleeper = hako(['run', '-e', 'GREETING=hello', '--', 'sleep', '1000']);
  const { id, record } = await running(sleeper.state);
  const ps = await hako(['ps'], { state: sleeper.state }).done;
  assert.match(ps.stdout, new RegExp(`${id}\\s+running \\(pid ${record!.pid}\\)\\s+\\S+\\s+busybox \\(bundled\\)\\s+sleep 1000`), ps.stdout);

  const exec = await hako(['exec', id.slice(0, 6), '--', 'sh', '-c', 'echo $GREETING from exec; exit 5'], { state: sleeper.state }).done;
  assert.is(exec.code, 5, exec.stderr);
  assert.is(exec.stdout, 'hello from exec\n');
  const cat = await hako(['exec', '-i', id, 'cat'], { state: sleeper.state, input: 'to exec\n' }).done;
  assert.is(cat.stdout, 'to exec\n', cat.stderr);

  const kill = await hako(['kill', id], { state: sleeper.state }).done;
  assert.is(kill.code, 0, kill.stderr);
  const r = await sleeper.done;
  assert.is(r.code, 137, r.stderr);
  assert.equal(fs.readdirSync(sleeper.state), []);
});

test('rm refuses a running sandbox, --force stops it; a dead one is listed and removed', async () => {
  const sleeper = hako(['run', 'sleep', '1000']);
  const { id } = await running(sleeper.state);
  const refused = await hako(['rm', id], { state: sleeper.state }).done;
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /is running/);
  const forced = await hako(['rm', '-f', id], { state: sleeper.state }).done;
  assert.is(forced.code, 0, forced.stderr);
  assert.is(forced.stdout, `${id}\n`);
  assert.is((await sleeper.done).code, 137);
  assert.equal(fs.readdirSync(sleeper.state), []);

  // A `hako run` killed outright cannot clean up: its sandbox shows as dead.
  const victim = hako(['run', 'sleep', '1000']);
  const dead = await running(victim.state);
  victim.child.kill('SIGKILL');
  await victim.done;
  const ps = await hako(['ps'], { state: victim.state }).done;
  assert.match(ps.stdout, new RegExp(`${dead.id}\\s+dead`));
  const rm = await hako(['rm', dead.id], { state: victim.state }).done;
  assert.is(rm.code, 0, rm.stderr);
  assert.equal(fs.readdirSync(victim.state), []);
});

test('the first SIGINT goes to the container, a second one destroys the sandbox', async () => {
  const trap = hako(['run', 'sh', '-c', 'trap "echo got INT; exit 7" INT; echo ready; while :; do sleep 0.1; done']);
  await waitFor(() => trap.output().includes('ready'));
  trap.child.kill('SIGINT');
  const r = await trap.done;
  assert.is(r.code, 7, r.stderr);
  assert.is(r.stdout, 'ready\ngot INT\n');

  // sleep as a pid namespace's init ignores SIGINT.
  const stubborn = hako(['run', 'sleep', '1000']);
  await running(stubborn.state);
  stubborn.child.kill('SIGINT');
  await sleep(1000);
  stubborn.child.kill('SIGINT');
  const s = await stubborn.done;
  assert.is(s.code, 130, s.stderr);
  assert.equal(fs.readdirSync(stubborn.state), []);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
