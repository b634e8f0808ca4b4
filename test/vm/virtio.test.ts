// virtio-blk and virtio-rng with the real guest: one cold boot (minutes on
// PVM hosts) drives a shell script over the serial console that uses both
// disks and the hardware RNG; the host then checks the image files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../host/native.js';

const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');
const MIB = 1024 * 1024;
const RO_PATTERN = 'hako-read-only-disk-pattern';

// $((...)) tells the shell's output apart from the console's echo of the script.
const SCRIPT = [
  'mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo written-by-the-guest > /mnt/hello.txt && sync && umount /mnt; echo "T-MOUNT-$((40+2)) $?"',
  `head -c ${RO_PATTERN.length} /dev/vdb; echo " T-RO-READ-$((40+2))"`,
  'echo x | dd of=/dev/vdb conv=fsync 2>/dev/null; echo "T-RO-WRITE-$((40+2)) $?"',
  'echo "$(cat /sys/devices/virtual/misc/hw_random/rng_current) T-RNG-CURRENT-$((40+2))"',
  'dd if=/dev/hwrng bs=16 count=2 2>/dev/null | od -An -tx1 | tr -d " \\n"; echo " T-RNG-$((40+2))"',
  'exit',
].join('\n') + '\n';

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function boot(args: string[], onReady: (stdin: NodeJS.WritableStream) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'boot', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', ready = false;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!ready && stdout.includes('hako-init: ready')) {
        ready = true;
        onReady(child.stdin);
      }
    });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('the guest mounts an ext4 disk, writes a file the host then reads; a read-only disk refuses writes; /dev/hwrng returns data', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-virtio-'));
  try {
    const rw = path.join(dir, 'rw.img');
    const ro = path.join(dir, 'ro.img');
    fs.writeFileSync(rw, Buffer.alloc(0));
    fs.truncateSync(rw, 32 * MIB);
    execFileSync('mkfs.ext4', ['-q', '-F', rw]);
    const roBytes = Buffer.alloc(MIB);
    roBytes.write(RO_PATTERN);
    fs.writeFileSync(ro, roBytes);
    const roSum = sha256(ro);

    const { code, stdout, stderr } = await boot(['--disk', rw, '--disk', `${ro},ro`, '--init-mode', 'shell'], (stdin) => stdin.end(SCRIPT));
    const line = (tag: string) => stdout.split(/\r?\n/).find((l) => l.includes(`${tag}-42`)) ?? '';
    assert.is(code, 0, `exit ${code}; stderr: ${stderr}\nconsole:\n${stdout.slice(-3000)}`);
    assert.match(line('T-MOUNT'), /T-MOUNT-42 0$/, `mount/write/sync failed:\n${stdout.slice(-3000)}`);
    assert.match(line('T-RO-READ'), `${RO_PATTERN} T-RO-READ-42`);
    assert.not.match(line('T-RO-WRITE'), /T-RO-WRITE-42 0$/, 'a write to the read-only disk succeeded');
    assert.match(line('T-RNG-CURRENT'), /virtio_rng/, `no virtio-rng in use:\n${stdout.slice(-2000)}`);
    const random = /([0-9a-f]{64}) T-RNG-42/.exec(line('T-RNG'));
    assert.ok(random, `no 32 bytes from /dev/hwrng:\n${stdout.slice(-2000)}`);
    assert.is.not(random![1], '0'.repeat(64));

    const content = execFileSync('debugfs', ['-R', 'cat /hello.txt', rw], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    assert.is(content, 'written-by-the-guest\n');
    assert.is(sha256(ro), roSum, 'the read-only image changed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('hako boot --disk names a missing image and exits 2 before booting', async () => {
  const { code, stderr } = await boot(['--disk', '/nonexistent/disk.img', '--no-template'], () => {});
  assert.is(code, 2);
  assert.match(stderr, 'disk /nonexistent/disk.img: no such file');
});

test.run();
