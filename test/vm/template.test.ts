// VM templates with the bundled guest: one cold boot makes the template, then
// `hako boot` starts clones of it, each with its own hostname, RNG state and
// the host's wall time. Runs against its own HAKO_CACHE_DIR (the guest build is found
// through build/guest.json, not that cache), so removing templates here
// leaves the user's alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundledGuest } from '../../host/guest.js';
import { repoRoot } from '../../host/native.js';

const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-template-test-'));
const root = path.join(cache, 'templates');

// A clone in shell mode runs this on its console. $((...)) tells the shell's
// output apart from the console's echo of the script.
const SCRIPT = [
  'echo "T-CLONE-$((40+2)) $(date +%s) $(head -c 16 /dev/urandom | od -An -tx1 | tr -d \' \\n\')"',
  'exit',
].join('\n') + '\n';

/** Runs the CLI; with `script`, writes it to the console once the guest prints its boot marker. */
function hako(args: string[], script?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, HAKO_CACHE_DIR: cache },
    });
    let stdout = '', stderr = '', ready = false;
    if (script === undefined) child.stdin.end();
    child.stdout.on('data', (d) => {
      stdout += d;
      if (script !== undefined && !ready && stdout.includes('hako-init: ready')) {
        ready = true;
        child.stdin.end(script);
      }
    });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let key = '';

test('hako template create: one cold boot, progress on stderr, the key on stdout', async () => {
  const { code, stdout, stderr } = await hako(['template', 'create']);
  assert.is(code, 0, stderr);
  assert.match(stderr, /^hako: creating VM template [0-9a-f]{16} /m);
  assert.match(stderr, /^hako: VM template [0-9a-f]{16} created in \d+\.\d s/m);
  key = stdout.trim();
  assert.match(key, /^[0-9a-f]{16}$/);
  assert.ok(fs.existsSync(path.join(root, key, 'memory.bin')));
});

test('hako boot twice: both clones print the markers and power off, with their own hostname, /dev/urandom output and the host time', async () => {
  const before = fs.statSync(path.join(root, key));
  const memoryBefore = fs.statSync(path.join(root, key, 'memory.bin'));
  const hostStart = Math.floor(Date.now() / 1000);
  const runs = await Promise.all([hako(['boot', '--init-mode', 'shell'], SCRIPT), hako(['boot', '--init-mode', 'shell'], SCRIPT)]);
  const hostEnd = Math.ceil(Date.now() / 1000);
  const guest = bundledGuest();
  const clones = runs.map(({ code, stdout, stderr }) => {
    assert.is(code, 0, stderr);
    assert.not.match(stderr, /creating VM template/, 'the template was reused');
    assert.match(stdout, 'hako-init: ready');
    assert.match(stdout, `hako-init: kernel ${guest.kernelRelease}`);
    assert.match(stdout, 'hako-init: cpus 1');
    assert.not.match(stdout, 'hako-clone', 'the clone line is not echoed');
    const m = /hako-init: clone (hako-[0-9a-f]{8}) (\d+)/.exec(stdout);
    assert.ok(m, `no clone marker in ${JSON.stringify(stdout)}`);
    const shell = /T-CLONE-42 (\d+) ([0-9a-f]{32})/.exec(stdout);
    assert.ok(shell, `no date and /dev/urandom bytes from the shell in ${JSON.stringify(stdout.slice(-2000))}`);
    return { hostname: m![1]!, seconds: [Number(m![2]), Number(shell![1])], random: shell![2]! };
  });
  assert.is.not(clones[0]!.hostname, clones[1]!.hostname);
  assert.is.not(clones[0]!.random, clones[1]!.random, 'clones of one template must not share RNG state');
  for (const seconds of clones.flatMap((c) => c.seconds)) {
    // The guest's clock was set (and read) while the host was between these times.
    assert.ok(seconds >= hostStart - 1 && seconds <= hostEnd + 1, `guest time ${seconds} outside the host's ${hostStart}..${hostEnd}`);
  }
  const after = fs.statSync(path.join(root, key));
  const memoryAfter = fs.statSync(path.join(root, key, 'memory.bin'));
  assert.is(after.ino, before.ino, 'same template directory');
  assert.is(memoryAfter.ino, memoryBefore.ino);
  assert.is(memoryAfter.mtimeMs, memoryBefore.mtimeMs, 'the memory file is untouched');
  assert.equal(fs.readdirSync(root), [key], 'no second template');
});

test('hako template ls lists it, rm removes it', async () => {
  const ls = await hako(['template', 'ls']);
  assert.is(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, new RegExp(`^${key}\\s+1\\s+256 MiB\\s+\\S+\\s+\\d+ MiB\\s+\\d+ s`, 'm'));
  const rm = await hako(['template', 'rm', key]);
  assert.is(rm.code, 0, rm.stderr);
  assert.is(rm.stdout.trim(), key);
  assert.not.ok(fs.existsSync(path.join(root, key)));
  const empty = await hako(['template', 'ls']);
  assert.is(empty.stdout, '');
  assert.match(empty.stderr, /no templates in/);
});

test.after(() => fs.rmSync(cache, { recursive: true, force: true }));
test.run();
