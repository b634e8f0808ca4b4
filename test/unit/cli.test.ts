// Bad input to `hako boot` gets one clear line and exit code 2, before any
// KVM work, so none of this needs /dev/kvm.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../host/native.js';

const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-cli-'));
const textFile = path.join(tmp, 'notes.txt');
fs.writeFileSync(textFile, 'this is not a kernel\n'.repeat(100));

function hako(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function rejects(args: string[], message: RegExp) {
  const { code, stderr } = hako(...args);
  assert.is(code, 2, `exit code for ${args.join(' ')}: ${stderr}`);
  assert.match(stderr, message);
  assert.not.match(stderr, /\n\s+at /, 'no stack trace');
  assert.is(stderr.trim().split('\n').length, 1, `one line: ${stderr}`);
}

test('missing, unreadable and non-kernel files are named', () => {
  rejects(['boot', '--kernel', path.join(tmp, 'nope')], /cannot read kernel .*nope: no such file/);
  rejects(['boot', '--kernel', tmp], /cannot read kernel .*: is a directory/);
  rejects(['boot', '--kernel', textFile], /not a bzImage or ELF vmlinux: .*notes\.txt/);
});

test('memory, vcpus and CPU template ranges', () => {
  rejects(['boot', '--kernel', textFile, '--memory', '63'], /memory must be .* from 64 to 4096, got 63/);
  rejects(['boot', '--kernel', textFile, '--memory', '4097'], /got 4097/);
  rejects(['boot', '--kernel', textFile, '--memory', '1g'], /--memory expects a whole number, got "1g"/);
  rejects(['boot', '--kernel', textFile, '--vcpus', '0'], /vcpus must be a whole number of at least 1, got 0/);
  rejects(['boot', '--kernel', textFile, '--vcpus', '-1'], /--vcpus/);
  rejects(['boot', '--kernel', textFile, '--cpu-template', 'fast'], /--cpu-template must be one of host, compatible, got "fast"/);
});

test('unknown options and commands', () => {
  rejects(['boot', '--kernal', 'x'], /Unknown option '--kernal'/);
  const { code, stderr } = hako('bot');
  assert.is(code, 2);
  assert.match(stderr, /unknown command "bot"/);
});

test('--help prints usage and exits 0', () => {
  const { code, stdout } = hako('boot', '--help');
  assert.is(code, 0);
  assert.match(stdout, /Usage: hako boot/);
  assert.match(stdout, /--cpu-template NAME/);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
