import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Root, SafePathError, type ResolveMode, type SafePathReason } from '../../host/fs/safe-path.js';

// base/canary.txt and base/canary/f are outside the root: no test may ever read them through it.
const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'hako-safe-path-')));
const dir = path.join(base, 'root');
const CANARY = 'CANARY';
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;

function file(rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(base, rel)), { recursive: true });
  fs.writeFileSync(path.join(base, rel), text);
}
function link(rel: string, target: string): void {
  fs.mkdirSync(path.dirname(path.join(base, rel)), { recursive: true });
  fs.symlinkSync(target, path.join(base, rel));
}

file('canary.txt', CANARY);
file('canary/f', CANARY);
file('root/canary.txt', 'root-canary');
file('root/etc/passwd', 'root-passwd');
file('root/dir/file', 'inside');
file('root/dir/sub/deep', 'deep');
link('root/links/rel', '../dir');
link('root/links/chain', 'rel/sub');
link('root/links/abs-inside', '/dir/file');
link('root/up', '../canary.txt');
link('root/up-dir', '../canary');
link('root/abs-host', path.join(base, 'canary.txt'));
link('root/abs-host-dir', base);
link('root/abs-passwd', '/etc/passwd');
link('root/chain1', 'chain2');
link('root/chain2', 'dir/../../canary.txt');
link('root/loop1', 'loop2');
link('root/loop2', 'loop1');

test.after(() => fs.rmSync(base, { recursive: true, force: true }));

/** The file's text, or the reason it was refused. */
function read(root: Root, rel: string): string {
  let fd: number;
  try {
    fd = root.openFile(rel);
  } catch (e) {
    if (e instanceof SafePathError) return e.reason;
    throw e;
  }
  try {
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function withRoot<T>(mode: ResolveMode, use: (root: Root) => T): T {
  const root = Root.open(dir, mode);
  try {
    return use(root);
  } finally {
    root.close();
  }
}

// [path, in-root, beneath, no-symlinks]: the text read, or the SafePathReason.
const table: [string, string, string, string][] = [
  ['../canary.txt', 'root-canary', 'escape', 'escape'],
  ['dir/../../canary.txt', 'root-canary', 'escape', 'escape'],
  ['dir/sub/../../../../../../canary.txt', 'root-canary', 'escape', 'escape'],
  [path.join(base, 'canary.txt'), 'not-found', 'escape', 'escape'],
  ['/etc/passwd', 'root-passwd', 'escape', 'escape'],
  ['up', 'root-canary', 'escape', 'symlink'],
  ['up-dir/f', 'not-found', 'escape', 'symlink'],
  ['abs-host', 'not-found', 'escape', 'symlink'],
  ['abs-host-dir/canary.txt', 'not-found', 'escape', 'symlink'],
  ['abs-passwd', 'root-passwd', 'escape', 'symlink'],
  ['chain1', 'root-canary', 'escape', 'symlink'],
  ['loop1', 'symlink', 'symlink', 'symlink'],
  ['dir/file/', 'not-directory', 'not-directory', 'not-directory'],
  // Legitimate paths, nested links inside the root included.
  ['dir/file', 'inside', 'inside', 'inside'],
  ['dir/./sub/../file', 'inside', 'inside', 'inside'],
  ['links/rel/file', 'inside', 'inside', 'symlink'],
  ['links/chain/deep', 'deep', 'deep', 'symlink'],
  ['links/abs-inside', 'inside', 'escape', 'symlink'],
];

const modes: ResolveMode[] = ['in-root', 'beneath', 'no-symlinks'];
modes.forEach((mode, column) => {
  test(`escape table, ${mode}`, () => {
    withRoot(mode, (root) => {
      for (const row of table) {
        const got = read(root, row[0]);
        assert.is.not(got, CANARY, `${row[0]} read a file outside the root`);
        assert.is(got, row[column + 1], `${mode} ${row[0]}`);
      }
    });
  });
});

test('what resolves lies inside the root, and realPath names it on the host', () => {
  withRoot('in-root', (root) => {
    assert.is(root.realPath('links/chain/deep'), path.join(dir, 'dir/sub/deep'));
    assert.is(root.realPath('chain1'), path.join(dir, 'canary.txt'));
    assert.is(root.realPath('/'), dir);
  });
});

test('errors name the path, the root and the mode, and blame the input', () => {
  withRoot('beneath', (root) => {
    try {
      root.openFile('up');
      assert.unreachable('escaped');
    } catch (e) {
      assert.instance(e, SafePathError);
      const error = e as SafePathError;
      assert.is(error.code, 'INVALID_ARGUMENT');
      assert.is(error.path, 'up');
      assert.is(error.root, dir);
      assert.is(error.message.split(' (openat2')[0], `path 'up' in root ${dir} (beneath) leads out of the root`);
      assert.match(error.message, 'EXDEV');
    }
  });
});

test('magic links are refused even where the root allows everything else', () => {
  const fd = fs.openSync(path.join(base, 'canary.txt'), O_RDONLY);
  try {
    const root = Root.open('/');
    try {
      assert.is(read(root, `proc/self/fd/${fd}`), 'symlink');
      assert.is(read(root, 'proc/self/root/etc/hostname'), 'symlink');
    } finally {
      root.close();
    }
  } finally {
    fs.closeSync(fd);
  }
});

test('creating through a dangling link lands inside the root (in-root) or is refused (beneath)', () => {
  link('root/new-link', '../created.txt');
  withRoot('beneath', (root) => {
    const refused = (() => { try { root.openFile('new-link', O_WRONLY | O_CREAT); } catch (e) { return e; } })();
    assert.is((refused as SafePathError).reason, 'escape');
  });
  withRoot('in-root', (root) => {
    fs.closeSync(root.openFile('new-link', O_WRONLY | O_CREAT, 0o600));
    assert.is((root.stat('new-link').mode & 0o777), 0o600);
    assert.throws(() => root.openFile('new-link', O_WRONLY | O_CREAT | O_EXCL), (e: SafePathError) => e.reason === 'exists');
  });
  assert.ok(fs.existsSync(path.join(dir, 'created.txt')));
  assert.not.ok(fs.existsSync(path.join(base, 'created.txt')));
});

test('mkdirAll makes nested directories, through links inside the root, and never outside', () => {
  withRoot('in-root', (root) => {
    root.mkdirAll('made/a/b');
    root.mkdirAll('made/a/b'); // again: nothing to do
    root.mkdirAll('links/rel/new/x');
    root.mkdirAll('../../escaped/x');
    assert.ok(fs.statSync(path.join(dir, 'made/a/b')).isDirectory());
    assert.ok(fs.statSync(path.join(dir, 'dir/new/x')).isDirectory());
    assert.ok(fs.statSync(path.join(dir, 'escaped/x')).isDirectory());
    assert.throws(() => root.mkdirAll('abs-host-dir/x'), (e: SafePathError) => e.reason === 'exists');
    assert.throws(() => root.mkdirAll('dir/file/x'), (e: SafePathError) => e.reason === 'not-directory');
  });
  withRoot('beneath', (root) => {
    assert.throws(() => root.mkdirAll('../escaped2'), (e: SafePathError) => e.reason === 'escape');
    assert.throws(() => root.mkdirAll('up-dir/x'), (e: SafePathError) => e.reason === 'escape');
  });
  assert.not.ok(fs.existsSync(path.join(base, 'escaped')));
  assert.not.ok(fs.existsSync(path.join(base, 'escaped2')));
  assert.not.ok(fs.existsSync(path.join(base, 'x')));
  assert.not.ok(fs.existsSync(path.join(base, 'canary/x')));
});

test('stat, readlink, rename and remove act on the root\'s files, never the links\' outside targets', () => {
  withRoot('in-root', (root) => {
    assert.is(root.stat('dir/file').size, 'inside'.length);
    assert.ok(root.stat('up', false).isSymbolicLink());
    assert.is(root.readlink('up'), '../canary.txt');
    assert.throws(() => root.readlink('dir/file'), (e: SafePathError) => e.reason === 'wrong-type');

    root.rename('dir/file', 'dir/renamed');
    assert.is(read(root, 'dir/renamed'), 'inside');
    assert.throws(() => root.rename('dir/renamed', 'etc/passwd', true), (e: SafePathError) => e.reason === 'exists');
    root.rename('dir/renamed', 'dir/file');

    link('root/victim', path.join(base, 'canary.txt'));
    root.remove('victim');
    root.remove('made/a/b/');
    assert.not.ok(fs.existsSync(path.join(dir, 'victim')));
    assert.not.ok(fs.existsSync(path.join(dir, 'made/a/b')));
    assert.throws(() => root.remove('dir/..'), (e: SafePathError) => e.reason === 'invalid');
  });
  withRoot('beneath', (root) => {
    assert.throws(() => root.rename('dir/file', '../stolen'), (e: SafePathError) => e.reason === 'escape');
    assert.throws(() => root.remove('../canary.txt'), (e: SafePathError) => e.reason === 'escape');
  });
  assert.is(fs.readFileSync(path.join(base, 'canary.txt'), 'utf8'), CANARY);
  assert.not.ok(fs.existsSync(path.join(base, 'stolen')));
});

test('openFile refuses a FIFO without blocking on it', () => {
  assert.is(spawnSync('mkfifo', [path.join(dir, 'fifo')]).status, 0);
  withRoot('in-root', (root) => {
    assert.is(read(root, 'fifo'), 'wrong-type');
    assert.ok(root.stat('fifo').isFIFO()); // an O_PATH fd opens nothing
  });
});

test('a closed root refuses every call', () => {
  const root = Root.open(dir);
  root.close();
  root.close();
  assert.throws(() => root.openFile('dir/file'), /is closed/);
});

/**
 * Runs `swap` (the body of a loop, given fs, base and dir) on another thread while `probe` runs here
 * for `ms` on a root of `mode`; returns how often each outcome came up.
 */
async function race(swap: string, ms: number, mode: ResolveMode, probe: (root: Root) => string): Promise<Map<string, number>> {
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const fs = require('node:fs');
     const { workerData: { stop, base, dir } } = require('node:worker_threads');
     require('node:worker_threads').parentPort.postMessage('started');
     while (Atomics.load(stop, 0) === 0) { ${swap} }`,
    { eval: true, workerData: { stop, base, dir } });
  const failed = new Promise<never>((_, reject) => worker.on('error', reject));
  await Promise.race([new Promise((resolve) => worker.once('message', resolve)), failed]);
  const seen = new Map<string, number>();
  try {
    withRoot(mode, (root) => {
      for (const end = Date.now() + ms; Date.now() < end;) {
        const got = probe(root);
        seen.set(got, (seen.get(got) ?? 0) + 1);
      }
    });
  } finally {
    Atomics.store(stop, 0, 1);
  }
  await Promise.race([new Promise((resolve) => worker.once('exit', resolve)), failed]);
  return seen;
}

test('a directory swapped for an escaping symlink during resolution never yields a file outside', async () => {
  file('root/race/f', 'inside');
  link('root/race.abs', path.join(base, 'canary'));
  link('root/race.rel', '../canary');
  // The directory and each link take turns at root/race.
  const swap = `
    fs.renameSync(dir + '/race', dir + '/race.dir');
    fs.renameSync(dir + '/race.abs', dir + '/race');
    fs.renameSync(dir + '/race', dir + '/race.abs');
    fs.renameSync(dir + '/race.rel', dir + '/race');
    fs.renameSync(dir + '/race', dir + '/race.rel');
    fs.renameSync(dir + '/race.dir', dir + '/race');`;
  for (const mode of ['in-root', 'beneath'] as ResolveMode[]) {
    const seen = await race(swap, 1000, mode, (root) => read(root, 'race/f'));
    assert.not.ok(seen.has(CANARY), `${mode}: read the canary outside the root ${seen.get(CANARY)} times`);
    assert.ok((seen.get('inside') ?? 0) > 0, `${mode}: never saw the directory: ${[...seen]}`);
    const refused: SafePathReason = mode === 'in-root' ? 'not-found' : 'escape';
    assert.ok((seen.get(refused) ?? 0) > 0, `${mode}: never saw the link: ${[...seen]}`);
  }
});

test('a directory moved out of the root while `..` climbs out of it never yields a file outside', async () => {
  // Climbing `..` from root/mover/d reaches root/canary.txt; from base/outside/d it would reach base/canary.txt.
  fs.mkdirSync(path.join(dir, 'mover/d'), { recursive: true });
  fs.mkdirSync(path.join(base, 'outside'));
  const swap = `
    fs.renameSync(dir + '/mover/d', base + '/outside/d');
    fs.renameSync(base + '/outside/d', dir + '/mover/d');`;
  for (const mode of ['in-root', 'beneath'] as ResolveMode[]) {
    const seen = await race(swap, 1000, mode, (root) => read(root, 'mover/d/../../canary.txt'));
    assert.not.ok(seen.has(CANARY), `${mode}: read the canary outside the root ${seen.get(CANARY)} times`);
    assert.ok((seen.get('root-canary') ?? 0) > 0, `${mode}: never resolved: ${[...seen]}`);
  }
});

test.run();
