// `npm run bench -- vsock`: hybrid vsock between the host and a guest, and
// container start latency inside a running VM.
// - Streams and round trips: a clone started by `hako boot --vsock PATH
//   --init-mode shell` (the VMM in its own process, as in use); the bench
//   types hako-vsockperf commands (guest/tools/vsockperf.c) on its console.
//   Throughput is what the guest tool measures (host->guest: `recv` from a
//   host server that writes BYTES and closes; guest->host: `send` to one that
//   reads to EOF). Round trips of 64 bytes are timed on the host, each one, to
//   the guest's `listen` echo server; the guest-timed `rtt` mode against a host
//   echo server covers guest-initiated connections.
// - Container start: Sandbox.create, then per container createContainer,
//   start, and the first byte of `sh -c 'echo started'` on stdout. The
//   baseline is crun on the host with the same OCI spec and busybox rootfs.
// QEMU's vhost-vsock needs /dev/vhost-vsock; without it that column says why.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { bundledGuest } from '../host/guest.js';
import { repoRoot } from '../host/native.js';
import { containerSpec } from '../host/sandbox/oci-spec.js';
import { Sandbox } from '../host/sandbox/sandbox.js';
import { connectVsock } from '../host/vsock/client.js';
import { formatSummary, summarize, type Summary } from './stats.js';

const STREAM_BYTES = 32 << 20;
const QUICK_STREAM_BYTES = 8 << 20;
const RTT_SIZE = 64;
const RTT_COUNT = 500;
const QUICK_RTT_COUNT = 200;
const ECHO_PORT = 5000;
const RECV_PORT = 5001;
const SEND_PORT = 5002;
const RTT_PORT = 5003;
const STEP_TIMEOUT_MS = 10 * 60 * 1000;
const CONTAINER_ARGS = ['sh', '-c', 'echo started'];

export interface VsockStreams {
  hostToGuestMBps: Summary;
  guestToHostMBps: Summary;
  /** Host-timed 64-byte round trips to the guest's echo server: per run, the median and the 99th percentile. */
  rttMedianUs: Summary;
  rttP99Us: Summary;
  /** Guest-timed (hako-vsockperf rtt) 64-byte round trips to a host echo server: per run, the mean. */
  guestRttAvgUs: Summary;
}

export interface ContainerStart {
  /** Request to createContainer resolved (the container exists, its process waits to be started). */
  createMs: Summary;
  /** createContainer resolved to start resolved. */
  startMs: Summary;
  /** Request to the first byte of the process's stdout. */
  firstByteMs: Summary;
  /** hako only, from the agent's console line: the rootfs mount and `crun create` inside the guest. */
  rootfsMountMs?: Summary;
  crunCreateMs?: Summary;
}

export interface VsockResult {
  name: 'vsock';
  runs: number;
  streamBytes: number;
  rttCount: number;
  hako: { streams?: VsockStreams; notRun?: string };
  qemu: { notRun: string };
  container: { hako: { start?: ContainerStart; notRun?: string }; hostCrun: { start?: ContainerStart; notRun?: string } };
}

/** hako-vsockperf's data pattern: byte i is (i * 131 + 7) mod 256. */
function pattern(length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 131 + 7) & 0xff;
  return bytes;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

/** `what` says what did not happen; a function is asked only on timeout (e.g. for the console output by then). */
function withTimeout<T>(promise: Promise<T>, what: string | (() => string), ms = STEP_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${typeof what === 'string' ? what : what()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Why QEMU cannot give this host's guests a vsock device, or undefined when it can. */
function qemuVsockUnavailable(): string | undefined {
  if (fs.existsSync('/dev/vhost-vsock')) return undefined;
  const modules = `/lib/modules/${os.release()}`;
  return `QEMU's vhost-vsock-device needs /dev/vhost-vsock, which this host lacks (the kernel ${os.release()} has no vhost_vsock`
    + `${fs.existsSync(modules) ? '' : ` and no ${modules} to load it from`})`;
}

/** A `hako boot --vsock` clone in init mode shell: commands go to its console, its output is collected. */
class ShellVm {
  private output = '';
  private waiters: Array<() => void> = [];
  private stderr = '';
  readonly closed: Promise<number | null>;
  private readonly child;

  constructor(readonly socketPath: string) {
    this.child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'host', 'cli', 'main.js'), 'boot', '--vsock', socketPath,
      '--init-mode', 'shell'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => { this.output += d.toString('latin1'); this.wake(); });
    this.child.stderr.on('data', (d: Buffer) => { this.stderr += d; });
    this.closed = new Promise((resolve) => this.child.on('close', (code) => { this.wake(); resolve(code); }));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * The first match of `re` in the console output after `from` (output arrives in pieces: `re` must
   * match up to a delimiter after its last number); rejects on a hako-vsockperf error or VM exit.
   */
  async until(re: RegExp, from: number, what: string): Promise<RegExpExecArray> {
    return withTimeout((async () => {
      for (;;) {
        const text = this.output.slice(from);
        const m = re.exec(text);
        if (m) return m;
        const error = /hako-vsockperf: error: .*\n/.exec(text);
        if (error) throw new Error(`${what}: ${error[0].trim()}`);
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          throw new Error(`${what}: the VM exited (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr.trim()}`);
        }
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    })(), () => `${what}; console tail:\n${this.output.slice(-1000)}`);
  }

  /** Types `command` on the guest's shell; returns the console offset where its output starts. */
  type(command: string): number {
    const from = this.output.length;
    this.child.stdin.write(`${command}\n`);
    return from;
  }

  async exit(): Promise<void> {
    this.child.stdin.end('exit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 60_000);
    await this.closed;
    clearTimeout(timer);
  }
}

/** Listens on `<socketPath>_<port>` (where guest connections to host port `port` go) for one connection. */
async function hostPort(socketPath: string, port: number): Promise<{ accepted: Promise<net.Socket>; close: () => void }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(`${socketPath}_${port}`, resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  return { accepted, close: () => server.close() };
}

async function hostToGuest(vm: ShellVm, bytes: number, data: Buffer): Promise<number> {
  const port = await hostPort(vm.socketPath, RECV_PORT);
  try {
    const from = vm.type(`hako-vsockperf recv ${RECV_PORT}`);
    const socket = await withTimeout(port.accepted, 'the guest connecting for recv');
    socket.on('error', () => {}); // the guest closing first shows in its own result line
    for (let off = 0; off < bytes; off += data.length) socket.write(data.subarray(0, Math.min(data.length, bytes - off)));
    socket.end();
    const m = await vm.until(/hako-vsockperf: recv bytes=(\d+) secs=[\d.]+ MBps=([\d.]+)\s/, from, 'guest recv');
    socket.destroy();
    if (Number(m[1]) !== bytes) throw new Error(`the guest received ${m[1]} bytes, expected ${bytes}`);
    return Number(m[2]);
  } finally {
    port.close();
  }
}

async function guestToHost(vm: ShellVm, bytes: number): Promise<number> {
  const port = await hostPort(vm.socketPath, SEND_PORT);
  try {
    const from = vm.type(`hako-vsockperf send ${SEND_PORT} ${bytes}`);
    const socket = await withTimeout(port.accepted, 'the guest connecting for send');
    let received = 0;
    socket.on('data', (d: Buffer) => { received += d.length; });
    socket.on('end', () => socket.end());
    socket.on('error', () => {});
    const m = await vm.until(/hako-vsockperf: send bytes=(\d+) secs=[\d.]+ MBps=([\d.]+)\s/, from, 'guest send');
    socket.destroy();
    if (received !== bytes) throw new Error(`the host received ${received} bytes of the guest's ${bytes}`);
    return Number(m[2]);
  } finally {
    port.close();
  }
}

/** `count` host-timed round trips of RTT_SIZE bytes to the guest's echo server, in microseconds. */
async function hostRtt(vm: ShellVm, count: number): Promise<number[]> {
  const socket = await connectVsock(vm.socketPath, ECHO_PORT, { timeoutMs: 60_000 });
  try {
    const message = pattern(RTT_SIZE);
    const times: number[] = [];
    let pending = 0;
    let next: (() => void) | undefined;
    socket.on('data', (d: Buffer) => {
      pending += d.length;
      if (pending >= RTT_SIZE) { pending -= RTT_SIZE; next?.(); }
    });
    const closed = new Promise<never>((_, reject) => socket.on('close', () => reject(new Error(
      `the guest's echo server closed the connection after ${times.length} of ${count} round trips`))));
    closed.catch(() => {});
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      const echoed = new Promise<void>((resolve) => { next = resolve; });
      socket.write(message);
      await withTimeout(Promise.race([echoed, closed]), `round trip ${i + 1} of ${count}`, 60_000);
      times.push((performance.now() - start) * 1000);
    }
    return times;
  } finally {
    socket.destroy();
  }
}

/** The guest's mean round trip (hako-vsockperf rtt) to a host echo server, in microseconds. */
async function guestRtt(vm: ShellVm, count: number): Promise<number> {
  const port = await hostPort(vm.socketPath, RTT_PORT);
  try {
    const from = vm.type(`hako-vsockperf rtt ${RTT_PORT} ${count} ${RTT_SIZE}`);
    const socket = await withTimeout(port.accepted, 'the guest connecting for rtt');
    socket.on('error', () => {});
    socket.pipe(socket);
    const m = await vm.until(/hako-vsockperf: rtt count=\d+ size=\d+ secs=[\d.]+ avg_us=([\d.]+) /, from, 'guest rtt');
    socket.destroy();
    return Number(m[1]);
  } finally {
    port.close();
  }
}

async function benchStreams(runs: number, bytes: number, rttCount: number, log: (l: string) => void): Promise<VsockStreams> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-vsock-'));
  const vm = new ShellVm(path.join(dir, 'vm.sock'));
  try {
    await vm.until(/hako-init: ready/, 0, 'the guest shell');
    await vm.until(/hako-vsockperf: listening port=5000/, vm.type(`hako-vsockperf listen ${ECHO_PORT} &`), 'the guest echo server');
    const data = pattern(1 << 20); // a whole number of 256-byte pattern periods, so repeating it continues the pattern
    const samples = { h2g: [] as number[], g2h: [] as number[], median: [] as number[], p99: [] as number[], guestAvg: [] as number[] };
    for (let i = 0; i < runs; i++) {
      samples.h2g.push(await hostToGuest(vm, bytes, data));
      samples.g2h.push(await guestToHost(vm, bytes));
      const rtt = (await hostRtt(vm, rttCount)).sort((a, b) => a - b);
      samples.median.push(percentile(rtt, 0.5));
      samples.p99.push(percentile(rtt, 0.99));
      samples.guestAvg.push(await guestRtt(vm, rttCount));
      log(`vsock ${i + 1}/${runs}: host->guest ${samples.h2g.at(-1)} MB/s, guest->host ${samples.g2h.at(-1)} MB/s, `
        + `rtt median ${samples.median.at(-1)!.toFixed(0)} us p99 ${samples.p99.at(-1)!.toFixed(0)} us, `
        + `guest-timed rtt avg ${samples.guestAvg.at(-1)} us`);
    }
    return {
      hostToGuestMBps: summarize(samples.h2g),
      guestToHostMBps: summarize(samples.g2h),
      rttMedianUs: summarize(samples.median),
      rttP99Us: summarize(samples.p99),
      guestRttAvgUs: summarize(samples.guestAvg),
    };
  } finally {
    await vm.exit();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface StartSample { createMs: number; startMs: number; firstByteMs: number; rootfsMountMs?: number; crunCreateMs?: number }

function summarizeStarts(samples: StartSample[]): ContainerStart {
  const of = (k: keyof StartSample) => summarize(samples.map((s) => s[k]!));
  return {
    createMs: of('createMs'),
    startMs: of('startMs'),
    firstByteMs: of('firstByteMs'),
    ...(samples.every((s) => s.rootfsMountMs !== undefined) ? { rootfsMountMs: of('rootfsMountMs'), crunCreateMs: of('crunCreateMs') } : {}),
  };
}

async function benchHakoContainers(runs: number, log: (l: string) => void): Promise<ContainerStart> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-sandbox-'));
  let guestConsole = '';
  let sandbox: Sandbox | undefined;
  try {
    sandbox = await Sandbox.create({ stateDir, console: (c) => { guestConsole += c.toString('latin1'); }, progress: log });
    const samples: StartSample[] = [];
    for (let i = 0; i < runs; i++) {
      const id = `bench-${i}`;
      const t0 = performance.now();
      const c = await sandbox.createContainer({ id, args: CONTAINER_ARGS });
      const t1 = performance.now();
      const firstByte = new Promise<number>((resolve) => c.stdout.once('data', () => resolve(performance.now())));
      await c.start();
      const t2 = performance.now();
      const t3 = await withTimeout(firstByte, `container ${id}'s first stdout byte`);
      const status = await c.wait();
      if (status.exitCode !== 0) throw new Error(`container ${id} exited ${status.exitCode}`);
      await c.remove();
      const agent = new RegExp(`created container ${id} \\(pid \\d+\\): rootfs mounted in (\\d+) ms, crun create (\\d+) ms`).exec(guestConsole);
      samples.push({
        createMs: t1 - t0, startMs: t2 - t1, firstByteMs: t3 - t0,
        ...(agent ? { rootfsMountMs: Number(agent[1]), crunCreateMs: Number(agent[2]) } : {}),
      });
      log(`vsock container ${i + 1}/${runs} hako: create ${(t1 - t0).toFixed(0)} ms, start ${(t2 - t1).toFixed(0)} ms, `
        + `first byte ${(t3 - t0).toFixed(0)} ms${agent ? ` (guest: rootfs mount ${agent[1]} ms, crun create ${agent[2]} ms)` : ''}`);
    }
    return summarizeStarts(samples);
  } finally {
    await sandbox?.destroy();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

/**
 * crun on this host, in a private mount namespace whose /sys/fs/cgroup is a
 * cgroup2 mount: crun refuses the host's hybrid cgroup v1/v2 layout ("cgroups
 * in hybrid mode not supported") even with --cgroup-manager=disabled, which
 * this baseline also needs so the host's cgroup tree is left alone.
 */
function hostCrun(args: string[], stdout: 'pipe' | 'ignore' = 'ignore') {
  const script = 'mount --make-rprivate / && mount -t cgroup2 none /sys/fs/cgroup && exec crun --cgroup-manager=disabled "$@"';
  return spawn('unshare', ['-m', 'sh', '-c', script, 'sh', ...args], { stdio: ['ignore', stdout, 'pipe'] });
}

function exited(child: ReturnType<typeof hostCrun>, what: string): Promise<void> {
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // 'exit', not 'close': the container keeps crun create's stdout open.
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${what} exited ${code}: ${stderr.trim()}`))));
  });
}

async function benchHostCrun(runs: number, log: (l: string) => void): Promise<ContainerStart> {
  const rootfs = bundledGuest().rootfs;
  if (!rootfs || !fs.existsSync(rootfs)) throw new Error(`the bundled rootfs ${rootfs ?? '(not in build/guest.json)'} is missing`);
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-crun-'));
  try {
    const samples: StartSample[] = [];
    for (let i = 0; i < runs; i++) {
      const id = `hako-bench-${process.pid}-${i}`;
      const spec = { ...containerSpec({ id: `bench-${i}`, args: CONTAINER_ARGS }), root: { path: rootfs, readonly: true } };
      fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
      const t0 = performance.now();
      const create = hostCrun(['create', '--bundle', bundle, id], 'pipe');
      const firstByte = new Promise<number>((resolve) => create.stdout!.once('data', () => resolve(performance.now())));
      try {
        await exited(create, 'crun create');
        const t1 = performance.now();
        await exited(hostCrun(['start', id]), 'crun start');
        const t2 = performance.now();
        const t3 = await withTimeout(firstByte, `host container ${id}'s first stdout byte`, 60_000);
        samples.push({ createMs: t1 - t0, startMs: t2 - t1, firstByteMs: t3 - t0 });
        log(`vsock container ${i + 1}/${runs} host crun: create ${(t1 - t0).toFixed(1)} ms, start ${(t2 - t1).toFixed(1)} ms, `
          + `first byte ${(t3 - t0).toFixed(1)} ms`);
      } finally {
        await exited(hostCrun(['delete', '--force', id]), 'crun delete').catch(() => {});
      }
    }
    return summarizeStarts(samples);
  } finally {
    fs.rmSync(bundle, { recursive: true, force: true });
  }
}

/** Runs `f`, or returns why it could not. */
async function attempt<T>(what: string, f: () => Promise<T>, log: (l: string) => void): Promise<T | string> {
  try {
    return await f();
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    log(`${what}: not available: ${why}`);
    return why;
  }
}

export async function benchVsock(opts: { quick: boolean; log: (line: string) => void }): Promise<VsockResult> {
  const runs = opts.quick ? 1 : 3;
  const streamBytes = opts.quick ? QUICK_STREAM_BYTES : STREAM_BYTES;
  const rttCount = opts.quick ? QUICK_RTT_COUNT : RTT_COUNT;
  const { log } = opts;
  const qemu = qemuVsockUnavailable() ?? 'not measured: this benchmark has no QEMU vhost-vsock runner yet';
  log(`vsock QEMU: not available: ${qemu}`);
  // One VM at a time: the streams' VM stops before the sandbox starts.
  const streams = await attempt('vsock streams', () => benchStreams(runs, streamBytes, rttCount, log), log);
  const hako = await attempt('vsock container start (hako)', () => benchHakoContainers(runs, log), log);
  const hostCrunStart = await attempt('vsock container start (host crun)', () => benchHostCrun(runs, log), log);
  return {
    name: 'vsock',
    runs,
    streamBytes,
    rttCount,
    hako: typeof streams === 'string' ? { notRun: streams } : { streams },
    qemu: { notRun: qemu },
    container: {
      hako: typeof hako === 'string' ? { notRun: hako } : { start: hako },
      hostCrun: typeof hostCrunStart === 'string' ? { notRun: hostCrunStart } : { start: hostCrunStart },
    },
  };
}

export function reportVsock(r: VsockResult): string {
  const s = r.hako.streams;
  const MiB = r.streamBytes / (1 << 20);
  const row = (what: string, x: Summary | undefined, unit: string, digits: number) =>
    `| ${what} | ${x ? formatSummary(x, unit, digits) : ''} | not available |`;
  const c = r.container;
  const start = (x: ContainerStart | undefined, k: keyof ContainerStart) => (x?.[k] ? formatSummary(x[k], 'ms') : '');
  const startRow = (what: string, k: keyof ContainerStart) => `| ${what} | ${start(c.hako.start, k)} | ${start(c.hostCrun.start, k)} |`;
  return [
    `### vsock (hybrid vsock to a template clone, 1 vCPU; ${r.runs} runs, medians and ranges)`,
    '| measure | hako | QEMU vhost-vsock |',
    '| --- | --- | --- |',
    row(`host -> guest (guest \`recv\`, ${MiB} MiB)`, s?.hostToGuestMBps, 'MB/s', 1),
    row(`guest -> host (guest \`send\`, ${MiB} MiB)`, s?.guestToHostMBps, 'MB/s', 1),
    row(`${RTT_SIZE} B round trip to a guest echo, host-timed, median of ${r.rttCount}`, s?.rttMedianUs, 'µs', 0),
    row(`${RTT_SIZE} B round trip to a guest echo, host-timed, p99 of ${r.rttCount}`, s?.rttP99Us, 'µs', 0),
    row(`${RTT_SIZE} B round trip to a host echo, guest-timed, mean of ${r.rttCount}`, s?.guestRttAvgUs, 'µs', 0),
    ...(r.hako.notRun !== undefined ? [`\nhako: not run: ${r.hako.notRun}`] : []),
    `\nQEMU vhost-vsock: not available: ${r.qemu.notRun}`,
    '',
    `Container start (\`${CONTAINER_ARGS.join(' ')}\` in the busybox rootfs; ${r.runs} containers one after another, medians and ranges):`,
    '| measure | hako (in a running sandbox VM) | crun on the host |',
    '| --- | --- | --- |',
    startRow('create (request to created)', 'createMs'),
    startRow('start (created to started)', 'startMs'),
    startRow('request to first stdout byte', 'firstByteMs'),
    startRow('in the guest: rootfs mount', 'rootfsMountMs'),
    startRow('in the guest: crun create', 'crunCreateMs'),
    ...(c.hako.notRun !== undefined ? [`\nhako containers: not run: ${c.hako.notRun}`] : []),
    c.hostCrun.notRun !== undefined
      ? `\ncrun on the host: not available: ${c.hostCrun.notRun}`
      : '\ncrun on the host runs in a private mount namespace with a cgroup2-only /sys/fs/cgroup and --cgroup-manager=disabled '
        + '(it refuses this host\'s hybrid cgroup layout), so it creates no cgroup; the guest\'s crun does.',
  ].join('\n');
}
