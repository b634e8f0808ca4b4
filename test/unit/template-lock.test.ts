import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lockCreation } from '../../host/template/create.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-lock-'));
const dir = path.join(root, '0123456789abcdef');
const lock = `${dir}.lock`;

test.after(() => fs.rmSync(root, { recursive: true, force: true }));

test('the first creator takes the lock, holding its pid', async () => {
  assert.ok(await lockCreation(dir, 'k', () => {}));
  assert.is(fs.readFileSync(lock, 'utf8'), `${process.pid}\n`);
  fs.rmSync(lock);
});

test('a lock left by a process that is gone is broken', async () => {
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  fs.writeFileSync(lock, `${dead}\n`);
  assert.ok(await lockCreation(dir, 'k', () => {}));
  assert.is(fs.readFileSync(lock, 'utf8'), `${process.pid}\n`);
  fs.rmSync(lock);
});

test('a waiter says whom it waits for, and uses the template the holder made', async () => {
  const holder = `${process.ppid}\n`; // alive for the whole test
  fs.writeFileSync(lock, holder);
  const lines: string[] = [];
  const waiting = lockCreation(dir, 'k', (l) => lines.push(l));
  setTimeout(() => {
    fs.mkdirSync(dir);
    fs.rmSync(lock);
  }, 300);
  assert.is(await waiting, false);
  assert.equal(lines, [`waiting for process ${process.ppid}, which is creating VM template k...`]);
});

test.run();
