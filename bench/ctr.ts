// `npm run bench -- ctr`: containerd running `ctr run --rm IMAGE ID echo hello`
// with hako's shim (from a VM template, and from a cold boot: the first task
// on a machine without a template) against runc in the same run, interleaved;
// and the memory of a running hako task's shim (which is its VMM too), PSS
// without guest RAM, against runc's shim.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Containerd, IMAGE, RUNTIME } from '../test/vm/containerd.js';
import { summarize, formatSummary, type Summary } from './stats.js';
import { vmmMemoryKiB } from './process.js';

const RUNC = 'io.containerd.runc.v2';
/** The shim's sandbox default (host/sandbox/sandbox.ts); mappings this large are guest RAM. */
const GUEST_RAM_BYTES = 256 * 1024 * 1024;

export interface CtrResult {
  name: 'ctr';
  runs: number;
  hakoMs: Summary;
  /** One run whose shim found no VM template (undefined with --quick). */
  hakoColdMs?: number;
  runcMs: Summary;
  hakoShimPssKiB: number;
  runcShimPssKiB: number;
  ratio: { runMs: number; coldRunMs?: number; shimPssKiB: number };
}

async function timedRun(c: Containerd, runtime: string, id: string): Promise<number> {
  const start = performance.now();
  const r = await c.ctr(['run', '--rm', '--runtime', runtime, IMAGE, id, 'echo', 'hello'], { timeoutMs: 15 * 60 * 1000 });
  const ms = performance.now() - start;
  if (r.code !== 0 || r.stdout !== 'hello\n') throw new Error(`ctr run --runtime ${runtime} failed (exit ${r.code}): ${r.stderr}\n${c.output.slice(-2000)}`);
  return ms;
}

/** The pid of the shim serving task `id` (containerd writes it nowhere we can read, so ask the shim through ctr). */
async function shimPss(c: Containerd, runtime: string, id: string): Promise<number> {
  const started = await c.ctr(['run', '-d', '--runtime', runtime, IMAGE, id, 'sleep', '1000'], { timeoutMs: 15 * 60 * 1000 });
  if (started.code !== 0) throw new Error(`ctr run -d --runtime ${runtime} failed: ${started.stderr}`);
  try {
    // Let the VM settle after the container started before measuring.
    await new Promise((r) => setTimeout(r, 3000));
    const pid = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).find((p) => {
      try {
        const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return argv.includes(id) && argv.some((a) => a.includes('containerd-shim-runc-v2') || a.endsWith('shim/main.js'));
      } catch { return false; }
    });
    if (pid === undefined) throw new Error(`no shim process found for task ${id}`);
    return vmmMemoryKiB(Number(pid), GUEST_RAM_BYTES, 'Pss');
  } finally {
    await c.ctr(['task', 'kill', '-s', 'KILL', id]);
    for (let i = 0; i < 100 && (await c.ctr(['task', 'rm', id])).code !== 0; i++) await new Promise((r) => setTimeout(r, 200));
    await c.ctr(['container', 'rm', id]);
  }
}

export async function benchCtr(opts: { quick: boolean; log: (line: string) => void }): Promise<CtrResult> {
  const runs = opts.quick ? 1 : 3;
  const c = await Containerd.start();
  try {
    opts.log('ctr: making sure the VM template exists');
    await timedRun(c, RUNTIME, 'warmup');
    const hako: number[] = [], runc: number[] = [];
    for (let i = 0; i < runs; i++) {
      hako.push(await timedRun(c, RUNTIME, `hako-${i}`));
      runc.push(await timedRun(c, RUNC, `runc-${i}`));
      opts.log(`ctr ${i + 1}/${runs}: hako ${(hako[i]! / 1000).toFixed(2)} s, runc ${runc[i]!.toFixed(0)} ms`);
    }
    let hakoColdMs: number | undefined;
    if (!opts.quick) {
      // A containerd whose shims see an empty template cache: the task's VM cold-boots the guest.
      const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-cache-'));
      const cold = await Containerd.start({ HAKO_CACHE_DIR: cache });
      try {
        hakoColdMs = await timedRun(cold, RUNTIME, 'cold');
        opts.log(`ctr: hako from a cold boot ${(hakoColdMs / 1000).toFixed(1)} s`);
      } finally {
        await cold.stop();
        fs.rmSync(cache, { recursive: true, force: true });
      }
    }
    const hakoShimPssKiB = await shimPss(c, RUNTIME, 'hako-pss');
    const runcShimPssKiB = await shimPss(c, RUNC, 'runc-pss');
    opts.log(`ctr: shim PSS hako ${(hakoShimPssKiB / 1024).toFixed(1)} MiB, runc ${(runcShimPssKiB / 1024).toFixed(1)} MiB`);
    const hakoMs = summarize(hako), runcMs = summarize(runc);
    return {
      name: 'ctr', runs, hakoMs, ...(hakoColdMs !== undefined ? { hakoColdMs } : {}), runcMs, hakoShimPssKiB, runcShimPssKiB,
      ratio: {
        runMs: hakoMs.median / runcMs.median,
        ...(hakoColdMs !== undefined ? { coldRunMs: hakoColdMs / runcMs.median } : {}),
        shimPssKiB: hakoShimPssKiB / runcShimPssKiB,
      },
    };
  } finally {
    await c.stop();
  }
}

export function reportCtr(r: CtrResult): string {
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  return [
    `### ctr (containerd ${RUNTIME} against runc: \`ctr run --rm IMAGE ID echo hello\`, ${r.runs} interleaved runs, medians and ranges)`,
    '| measure | hako | runc | hako / runc |',
    '| --- | --- | --- | --- |',
    `| ctr run --rm, from a VM template | ${formatSummary(r.hakoMs, 'ms', 0)} | ${formatSummary(r.runcMs, 'ms', 0)} | ${r.ratio.runMs.toFixed(1)} |`,
    ...(r.hakoColdMs !== undefined ? [`| ctr run --rm, cold boot (no template) | ${r.hakoColdMs.toFixed(0)} ms | | ${r.ratio.coldRunMs!.toFixed(1)} |`] : []),
    `| shim PSS per running task (hako: shim + VMM, without guest RAM) | ${mib(r.hakoShimPssKiB)} | ${mib(r.runcShimPssKiB)} | ${r.ratio.shimPssKiB.toFixed(1)} |`,
  ].join('\n');
}
