// Sandbox lifecycle edges (issue 6): cancellation through AbortSignal and
// destroy() after a failed container start release everything on the host.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox } from '../../host/sandbox/sandbox.js';
import { TtrpcError } from '../../host/ttrpc/status.js';

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-sandbox-test-'));
const openFds = () => fs.readdirSync('/proc/self/fd').length;

test('destroy() after a failed start leaves no fd, socket or state directory behind', async () => {
  const before = openFds();
  const sandbox = await Sandbox.create({ stateDir, progress: (line) => process.stderr.write(`${line}\n`) });
  assert.ok(fs.existsSync(path.join(sandbox.dir, 'vsock.sock')));
  let error: unknown;
  try {
    const c = await sandbox.createContainer({ id: 'missing', args: ['/no/such/program'] });
    await c.start();
  } catch (e) {
    error = e;
  }
  assert.instance(error, TtrpcError);
  assert.match((error as Error).message, /no\/such\/program/);
  await sandbox.destroy();
  await sandbox.destroy(); // idempotent
  assert.not.ok(fs.existsSync(sandbox.dir));
  assert.equal(fs.readdirSync(stateDir), []);
  assert.is(openFds(), before);
});

test('Sandbox.create() aborted through its AbortSignal rejects with the reason and leaves nothing behind', async () => {
  const before = openFds();
  const early = new AbortController();
  early.abort(new Error('not wanted'));
  try {
    await Sandbox.create({ stateDir, signal: early.signal });
    assert.unreachable('created');
  } catch (e) {
    assert.match((e as Error).message, 'not wanted');
  }
  // Aborted while the clone is being restored or its agent connected.
  const late = new AbortController();
  const creating = Sandbox.create({ stateDir, signal: late.signal });
  setTimeout(() => late.abort(new Error('changed my mind')), 100);
  try {
    const sandbox = await creating;
    await sandbox.destroy(); // it won the race: still nothing may be left
  } catch (e) {
    assert.match((e as Error).message, 'changed my mind');
  }
  assert.equal(fs.readdirSync(stateDir), []);
  assert.is(openFds(), before);
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test.run();
