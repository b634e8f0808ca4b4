// Boots the bundled guest for real. Cold boots take a minute or more on PVM
// hosts (DESIGN.md), so each boot here serves several checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bundledCmdline, bundledGuest } from '../../host/guest.js';
import { isPvmHost } from '../../host/vmm/kvm.js';
import { runCli } from './cli.js';

test('hako boot --vcpus 2 --no-template --init-mode poweroff (a cold boot): init runs, sees 2 CPUs, powers off with exit 0', async () => {
  const { code, stdout, stderr } = await runCli(['boot', '--vcpus', '2', '--no-template', '--init-mode', 'poweroff']);
  const guest = bundledGuest();
  assert.match(stdout, 'hako-init: ready', `no init marker; stderr: ${stderr}`);
  assert.match(stdout, `hako-init: kernel ${guest.kernelRelease}`);
  assert.match(stdout, 'hako-init: cpus 2');
  assert.is(code, 0, stderr);
});

test('a guest kernel panic exits non-zero with a one-line reason', async () => {
  const guest = bundledGuest();
  const { code, stdout, stderr } = await runCli(['boot', '--memory', '128', '--cmdline', `${bundledCmdline(guest, isPvmHost())} hako.init=panic`]);
  assert.match(stdout, 'hako-init: exiting, the kernel will panic');
  assert.is(code, 1, stderr);
  assert.match(stderr, /^hako: the guest kernel panicked/m);
});

test.run();
