// Whole-process measurements: spawn a VMM, time markers on its console, and
// read its resident memory from /proc without counting guest RAM.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

export interface ProcessRun {
  /** ms from spawn to each marker's first appearance in stdout. */
  markers: Map<string, number>;
  /** ms from spawn to exit. */
  exitMs: number;
  exitCode: number | null;
  /** VMM resident memory excluding guest RAM, sampled when the first marker appeared (KiB). */
  vmmRssKiB: number | undefined;
  stdout: string;
  stderr: string;
}

/**
 * Memory of `pid` from /proc/PID/smaps (the `field` lines: Rss, or Pss to
 * share pages fairly among processes), leaving out every mapping at least
 * `guestRamBytes` large: that is guest RAM (QEMU's RAM block, hako's Wasm
 * memory reservation), which the guest fills, not the VMM.
 */
export function vmmMemoryKiB(pid: number, guestRamBytes: number, field: 'Rss' | 'Pss'): number {
  const line = new RegExp(`^${field}:\\s+(\\d+) kB`);
  let total = 0;
  let skip = false;
  for (const text of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(text);
    if (range) {
      skip = parseInt(range[2]!, 16) - parseInt(range[1]!, 16) >= guestRamBytes;
      continue;
    }
    const kib = line.exec(text);
    if (kib && !skip) total += Number(kib[1]);
  }
  return total;
}

export const vmmRssKiB = (pid: number, guestRamBytes: number): number => vmmMemoryKiB(pid, guestRamBytes, 'Rss');

export function runProcess(cmd: string, args: string[], opts: {
  markers: string[];
  guestRamBytes: number;
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
}): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const markers = new Map<string, number>();
    let stdout = '', stderr = '';
    let rss: number | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('latin1');
      for (const m of opts.markers) {
        if (markers.has(m) || !stdout.includes(m)) continue;
        markers.set(m, performance.now() - start);
        if (rss === undefined && child.pid !== undefined) {
          try { rss = vmmRssKiB(child.pid, opts.guestRamBytes); } catch { /* exited already */ }
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('latin1'); });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ markers, exitMs: performance.now() - start, exitCode: code, vmmRssKiB: rss, stdout, stderr });
    });
  });
}
