// watchFd on a KVM VM's eventfds (the unit tests cover the I/O engine, whose
// completions use the same poll): counts arrive on the JS thread, close()
// stops them, and a watch never keeps the process alive by itself.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native, repoRoot } from '../../host/native.js';

const addon = native();

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

test('watchFd hands over the eventfd counter; close() stops it', async () => {
  const vm = new addon.Vm();
  // The watch does not keep the event loop alive (in a VM the vCPUs do): this timer does.
  const keepAlive = setInterval(() => {}, 1000);
  try {
    const fd = vm.createEventfd();
    const counts: bigint[] = [];
    let wake: (() => void) | undefined;
    const watch = addon.watchFd(fd, (count) => {
      counts.push(count);
      wake?.();
    });
    const next = () => new Promise<void>((resolve) => { wake = resolve; });

    let arrived = next();
    vm.signalEventfd(fd);
    await arrived;
    assert.equal(counts, [1n]);

    arrived = next();
    vm.signalEventfd(fd);
    vm.signalEventfd(fd);
    vm.signalEventfd(fd);
    await arrived;
    assert.equal(counts, [1n, 3n], 'signals before the loop looks are one count');

    watch.close();
    watch.close();
    vm.signalEventfd(fd);
    for (let i = 0; i < 5; i++) await nextTick();
    assert.equal(counts, [1n, 3n], 'nothing after close()');
  } finally {
    clearInterval(keepAlive);
    vm.close();
  }
});

test('a watch does not keep the process alive', () => {
  const script = `
    const { native } = await import(${JSON.stringify(path.join(repoRoot, 'dist', 'host', 'native.js'))});
    const vm = new (native().Vm)();
    const fd = vm.createEventfd();
    globalThis.watch = native().watchFd(fd, (count) => console.log('count', count));
    vm.signalEventfd(fd);
    setTimeout(() => {}, 100);  // gives the watch a turn; afterwards nothing but the watch is left
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.is(child.status, 0, `exited on its own: ${child.stderr}`);
  assert.is(child.stdout.trim(), 'count 1n');
});

test.run();
