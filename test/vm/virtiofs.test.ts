// virtio-fs in a VM (issue 7): guest/tools/fstest.c exercises file-system
// semantics on a shared directory and the host compares what it left byte for
// byte; escape attempts never reach canary files beside the share; a
// read-only share refuses every write; and a container runs on a host
// directory as its root file system with a volume. VMs are template clones
// (`hako boot --share`, the mode from the clone line).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundledGuest } from '../../host/guest.js';
import { Sandbox } from '../../host/sandbox/sandbox.js';
import { mountsBelow } from '../../host/sandbox/shares.js';
import { runCli as hako } from './cli.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-virtiofs-test-'));
test.after(() => fs.rmSync(scratch, { recursive: true, force: true }));

function freshDir(name: string): string {
  const dir = path.join(scratch, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

const failures = (stdout: string) => stdout.split('\n').filter((l) => /fstest: FAIL/.test(l)).join('\n');

test('fstest: file-system semantics on a shared directory, and the host sees the results byte-identically', async () => {
  const share = freshDir('semantics');
  const r = await hako(['boot', '--share', share, '--init-mode', 'fstest']);
  assert.is(r.code, 0, r.stderr.slice(-2000));
  assert.match(r.stdout, /fstest: done \d+ ok 0 failed/, failures(r.stdout) || r.stdout.slice(-3000));

  const out = (name: string) => path.join(share, 'out', name);
  const pattern = Buffer.alloc(1 << 20);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7) % 251;
  const st = (name: string) => fs.lstatSync(out(name), { bigint: true });
  assert.ok(fs.readFileSync(out('pattern-1MiB')).equals(pattern), 'pattern-1MiB');
  assert.is(Number(st('pattern-1MiB').mode & 0o7777n), 0o644);
  assert.is(fs.readlinkSync(out('link')), 'pattern-1MiB');
  assert.is(st('hard').ino, st('pattern-1MiB').ino);
  assert.is(st('hard').nlink, 2n);
  assert.is(fs.readFileSync(out('renamed'), 'utf8'), 'renamed\n');
  assert.is(fs.readFileSync(out('replaced'), 'utf8'), 'new\n');
  assert.is(fs.readFileSync(out('swap-a'), 'utf8'), 'b\n');
  assert.is(fs.readFileSync(out('swap-b'), 'utf8'), 'a\n');
  assert.is(Number(st('mode-0640').mode & 0o7777n), 0o640);
  assert.is(st('owned').uid, 1000n);
  assert.is(st('owned').gid, 1000n);
  assert.is(fs.readFileSync(out('truncated'), 'utf8'), '0123');
  assert.is(st('times').atimeNs, 1_000_000_000_000_000_000n);
  assert.is(st('times').mtimeNs, 1_234_567_890_123_456_789n);
  const xattrs = execFileSync('python3', ['-c',
    'import os,sys; f=sys.argv[1]; print(os.getxattr(f, "user.hako").decode()); print(",".join(sorted(a for a in os.listxattr(f) if a.startswith("user."))))',
    out('xattr')], { encoding: 'utf8' });
  assert.is(xattrs, 'yes\nuser.hako\n');
  const sparse = st('sparse');
  assert.is(sparse.size, 5n * 1024n * 1024n * 1024n + 4096n);
  assert.ok(sparse.blocks * 512n < 1n << 20n, `sparse file allocates ${sparse.blocks * 512n} bytes`);
  const tail = Buffer.alloc(4096);
  const fd = fs.openSync(out('sparse'), 'r');
  fs.readSync(fd, tail, 0, 4096, 5 * 1024 * 1024 * 1024);
  fs.closeSync(fd);
  assert.ok(tail.equals(pattern.subarray(0, 4096)), 'the data at 5 GiB');
  assert.ok(fs.readFileSync(out('concurrent')).equals(Buffer.concat([Buffer.alloc(262144, 'A'), Buffer.alloc(262144, 'B')])), 'concurrent writers');
  assert.ok(fs.readFileSync(out('fallocate')).equals(Buffer.alloc(1 << 20)), 'fallocate');
  const many = fs.readdirSync(path.join(share, 'many'));
  assert.ok(many.length >= 100 && many.every((f) => /^f\d{4}$/.test(f)), `many/ holds ${many.length} files`);
  assert.not.ok(fs.existsSync(path.join(share, 'work')), 'the scratch directory was removed');
});

test('escapes: symlinks to /, .. chains and racing renames never reach canary files beside the share', async () => {
  const parent = freshDir('escape');
  const share = freshDir('escape/share');
  const secret = `hako-secret-${randomBytes(8).toString('hex')}`;
  const canaries = [path.join(parent, 'hako-canary'), path.join(scratch, 'hako-canary')];
  for (const c of canaries) fs.writeFileSync(c, `${secret}\n`);
  const before = canaries.map((c) => fs.statSync(c, { bigint: true }).mtimeNs);
  const r = await hako(['boot', '--share', share, '--init-mode', 'fstest-escape']);
  assert.is(r.code, 0, r.stderr.slice(-2000));
  assert.match(r.stdout, /escape: done \d+ attempts \d+ opened/, r.stdout.slice(-3000));
  assert.not.ok(r.stdout.includes(secret), 'a canary was read from the guest');
  canaries.forEach((c, i) => {
    assert.is(fs.readFileSync(c, 'utf8'), `${secret}\n`, `${c} was modified`);
    assert.is(fs.statSync(c, { bigint: true }).mtimeNs, before[i]);
  });
  assert.equal(fs.readdirSync(parent).sort(), ['hako-canary', 'share'], 'nothing made beside the share');
});

test('a read-only share refuses every kind of write with EROFS and keeps its files', async () => {
  const share = freshDir('readonly');
  fs.writeFileSync(path.join(share, 'file'), 'untouched\n');
  const r = await hako(['boot', '--share', `${share}:ro`, '--init-mode', 'fstest-ro']);
  assert.is(r.code, 0, r.stderr.slice(-2000));
  assert.match(r.stdout, /fstest: done \d+ ok 0 failed/, failures(r.stdout) || r.stdout.slice(-3000));
  assert.equal(fs.readdirSync(share), ['file']);
  assert.is(fs.readFileSync(path.join(share, 'file'), 'utf8'), 'untouched\n');
});

test('a container on a host directory (virtio-fs rootfs) with a volume: writes reach the host; nothing stays mounted', async () => {
  const rootfs = path.join(scratch, 'rootfs');
  execFileSync('cp', ['-a', bundledGuest().rootfs, rootfs]);
  const data = freshDir('data');
  fs.writeFileSync(path.join(data, 'in'), 'from-host\n');
  const stateDir = freshDir('state');
  const sandbox = await Sandbox.create({ stateDir });
  try {
    const c = await sandbox.createContainer({
      id: 'fs', args: ['sh', '-c', 'cat /data/in; echo from-guest >/data/out; echo rootfs-write >/new-file'],
      rootfs: { directory: rootfs }, volumes: [{ source: data, destination: '/data' }],
    });
    const chunks: Buffer[] = [];
    c.stdout.on('data', (d: Buffer) => chunks.push(d));
    await c.start();
    const status = await c.wait();
    assert.is(status.exitCode, 0);
    assert.is(Buffer.concat(chunks).toString(), 'from-host\n');
    assert.is(fs.readFileSync(path.join(data, 'out'), 'utf8'), 'from-guest\n');
    assert.is(fs.readFileSync(path.join(rootfs, 'new-file'), 'utf8'), 'rootfs-write\n');
    await c.remove();
    assert.equal(mountsBelow(sandbox.dir), [], 'the container\'s bind mounts went with it');
  } finally {
    await sandbox.destroy();
  }
  assert.equal(mountsBelow(stateDir), []);
  assert.equal(fs.readdirSync(stateDir), []);
  assert.is(fs.readFileSync(path.join(data, 'in'), 'utf8'), 'from-host\n', 'the volume survives the sandbox');
  assert.ok(fs.existsSync(path.join(rootfs, 'bin', 'busybox')), 'the rootfs survives the sandbox');
});

test.run();
