// `npm run bench -- restore`: the bundled guest started from a VM template
// (snapshot restore) against a cold boot of the same guest, interleaved in the
// same run: time to the first KVM_RUN, to the init marker and to exit.
import path from 'node:path';
import { repoRoot } from '../host/native.js';
import { runProcess, type ProcessRun } from './process.js';
import { summarize, type Summary } from './stats.js';

const MARKER = 'hako-init: ready';
const MEMORY_MIB = 256;
const TIMEOUT_MS = 15 * 60 * 1000;
const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');

interface Side { firstKvmRunMs: Summary; markerMs: Summary; exitMs: Summary; vmmRssKiB: Summary }

export interface RestoreResult {
  name: 'restore';
  runs: number;
  template: Side;
  cold: Side;
  ratio: { markerMs: number; exitMs: number };
}

async function boot(extra: string[]): Promise<ProcessRun & { firstKvmRunMs: number }> {
  const run = await runProcess(process.execPath, [cli, 'boot', '--init-mode', 'poweroff', '--memory', String(MEMORY_MIB), '--vcpus', '1', ...extra], {
    markers: [MARKER], guestRamBytes: MEMORY_MIB * 1024 * 1024, timeoutMs: TIMEOUT_MS, env: { ...process.env, HAKO_TRACE: 'startup' },
  });
  if (run.exitCode !== 0 || !run.markers.has(MARKER)) {
    throw new Error(`hako boot ${extra.join(' ')} failed (exit ${run.exitCode}):\n${run.stderr.slice(-2000)}`);
  }
  const started = /hako-trace: vcpus started ([\d.]+) ms/.exec(run.stderr);
  return { ...run, firstKvmRunMs: started ? Number(started[1]) : NaN };
}

const side = (runs: Array<ProcessRun & { firstKvmRunMs: number }>): Side => ({
  firstKvmRunMs: summarize(runs.map((r) => r.firstKvmRunMs)),
  markerMs: summarize(runs.map((r) => r.markers.get(MARKER)!)),
  exitMs: summarize(runs.map((r) => r.exitMs)),
  vmmRssKiB: summarize(runs.flatMap((r) => (r.vmmRssKiB === undefined ? [] : [r.vmmRssKiB]))),
});

export async function benchRestore(opts: { runs: number; log: (line: string) => void }): Promise<RestoreResult> {
  opts.log('restore: making sure the template exists');
  await boot([]); // creates the template when it is missing; not measured
  const template = [], cold = [];
  for (let i = 0; i < opts.runs; i++) {
    const t = await boot([]);
    template.push(t);
    opts.log(`restore ${i + 1}/${opts.runs} template: marker ${(t.markers.get(MARKER)! / 1000).toFixed(2)} s`);
    const c = await boot(['--no-template']);
    cold.push(c);
    opts.log(`restore ${i + 1}/${opts.runs} cold: marker ${(c.markers.get(MARKER)! / 1000).toFixed(1)} s`);
  }
  const t = side(template), c = side(cold);
  return {
    name: 'restore', runs: opts.runs, template: t, cold: c,
    ratio: { markerMs: t.markerMs.median / c.markerMs.median, exitMs: t.exitMs.median / c.exitMs.median },
  };
}
