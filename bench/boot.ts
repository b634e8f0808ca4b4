// `npm run bench -- boot`: cold boot of the bundled guest under hako and under
// QEMU microvm, interleaved: time to the init marker, time to exit, the VMM's
// resident memory without guest RAM, and hako's time to its first KVM_RUN.
import path from 'node:path';
import { bundledCmdline, bundledGuest } from '../host/guest.js';
import { repoRoot } from '../host/native.js';
import { isPvmHost } from '../host/vmm/kvm.js';
import { platformCmdline } from '../host/vmm/cmdline.js';
import { runProcess, type ProcessRun } from './process.js';
import { qemuForGuest, QEMU_POWEROFF_STATUS } from './qemu.js';
import { summarize, type Summary } from './stats.js';

const MARKER = 'hako-init: ready';
const MEMORY_MIB = 256;
const TIMEOUT_MS = 15 * 60 * 1000;

export interface BootResult {
  name: 'boot';
  runs: number;
  hako: { markerMs: Summary; exitMs: Summary; vmmRssKiB: Summary; firstKvmRunMs: Summary };
  qemu: { markerMs: Summary; exitMs: Summary; vmmRssKiB: Summary };
  ratio: { markerMs: number; exitMs: number; vmmRssKiB: number };
}

function check(run: ProcessRun, who: string, okStatus: number): void {
  if (!run.markers.has(MARKER) || run.exitCode !== okStatus) {
    throw new Error(`${who} boot failed (exit ${run.exitCode}, marker ${run.markers.has(MARKER) ? 'seen' : 'missing'}):\n${run.stderr.slice(-2000)}\n${run.stdout.slice(-2000)}`);
  }
}

export async function benchBoot(opts: { runs: number; log: (line: string) => void }): Promise<BootResult> {
  const guest = bundledGuest();
  const pvmHost = isPvmHost();
  // Both VMMs boot the guest to its init and power off (without the mode, init serves the agent until stopped).
  const cmdline = `${platformCmdline(bundledCmdline(guest, pvmHost), { pvmHost })} hako.init=poweroff`;
  const guestRamBytes = MEMORY_MIB * 1024 * 1024;
  // A cold boot: no VM template (`npm run bench -- restore` measures those).
  const hakoArgs = [path.join(repoRoot, 'dist', 'host', 'cli', 'main.js'), 'boot', '--no-template', '--init-mode', 'poweroff', '--memory', String(MEMORY_MIB), '--vcpus', '1'];
  const qemuArgs = qemuForGuest(guest, cmdline, MEMORY_MIB, 1, pvmHost);
  const hako: ProcessRun[] = [], qemu: ProcessRun[] = [], firstRun: number[] = [];

  for (let i = 0; i < opts.runs; i++) {
    const h = await runProcess(process.execPath, hakoArgs, {
      markers: [MARKER], guestRamBytes, timeoutMs: TIMEOUT_MS, env: { ...process.env, HAKO_TRACE: 'startup' },
    });
    check(h, 'hako', 0);
    const started = /hako-trace: vcpus started ([\d.]+) ms/.exec(h.stderr);
    if (started) firstRun.push(Number(started[1]));
    hako.push(h);
    opts.log(`boot ${i + 1}/${opts.runs} hako: marker ${(h.markers.get(MARKER)! / 1000).toFixed(1)} s, exit ${(h.exitMs / 1000).toFixed(1)} s`);

    const q = await runProcess('qemu-system-x86_64', qemuArgs, { markers: [MARKER], guestRamBytes, timeoutMs: TIMEOUT_MS });
    check(q, 'qemu', QEMU_POWEROFF_STATUS);
    qemu.push(q);
    opts.log(`boot ${i + 1}/${opts.runs} qemu: marker ${(q.markers.get(MARKER)! / 1000).toFixed(1)} s, exit ${(q.exitMs / 1000).toFixed(1)} s`);
  }

  const of = (runs: ProcessRun[]) => ({
    markerMs: summarize(runs.map((r) => r.markers.get(MARKER)!)),
    exitMs: summarize(runs.map((r) => r.exitMs)),
    vmmRssKiB: summarize(runs.flatMap((r) => (r.vmmRssKiB === undefined ? [] : [r.vmmRssKiB]))),
  });
  const h = of(hako), q = of(qemu);
  return {
    name: 'boot',
    runs: opts.runs,
    hako: { ...h, firstKvmRunMs: summarize(firstRun) },
    qemu: q,
    ratio: {
      markerMs: h.markerMs.median / q.markerMs.median,
      exitMs: h.exitMs.median / q.exitMs.median,
      vmmRssKiB: h.vmmRssKiB.median / q.vmmRssKiB.median,
    },
  };
}
