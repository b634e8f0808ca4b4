// A private containerd for the shim's tests and benchmark: Debian's
// containerd with its own config, root, state and socket under a temporary
// directory, the hako shim on its PATH (a launcher for this checkout), and a
// busybox image built from busybox-static and imported with `ctr images import`.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../host/native.js';

export const IMAGE = 'hako.test/busybox:latest';
export const RUNTIME = 'io.containerd.hako.v2';
const NAMESPACE = 'hako-test';
const BUSYBOX = '/bin/busybox';
const SHIM = path.join(repoRoot, 'dist', 'host', 'shim', 'main.js');

export interface CtrResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class Containerd {
  private constructor(readonly dir: string, private readonly daemon: ChildProcess, readonly env: NodeJS.ProcessEnv, private log: () => string) {}

  get socket(): string {
    return path.join(this.dir, 'containerd.sock');
  }

  /** Starts containerd and waits until `ctr version` answers; imports the busybox image. */
  static async start(shimEnv: NodeJS.ProcessEnv = {}): Promise<Containerd> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-ctrd-'));
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'containerd-shim-hako-v2'), `#!/bin/sh\nexec ${process.execPath} ${SHIM} "$@"\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'config.toml'), [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      // Only what `ctr run` needs: no CRI, no snapshotters but overlayfs, no tracing.
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",',
      '  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.native",',
      '  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]',
      '[grpc]',
      `  address = "${dir}/containerd.sock"`,
      '',
    ].join('\n'));
    // The shims (containerd's children) keep their sockets and sandboxes in the test's directory too.
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, HAKO_STATE_DIR: path.join(dir, 'hako'), ...shimEnv };
    let log = '';
    const daemon = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (d: Buffer) => { log = (log + d.toString()).slice(-64 * 1024); };
    daemon.stdout!.on('data', collect);
    daemon.stderr!.on('data', collect);
    const c = new Containerd(dir, daemon, env, () => log);
    for (let i = 0; ; i++) {
      if ((await c.ctr(['version'])).code === 0) break;
      if (daemon.exitCode !== null || i > 200) throw new Error(`containerd did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const image = buildBusyboxImage(dir);
    const imported = await c.ctr(['images', 'import', image]);
    if (imported.code !== 0) throw new Error(`ctr images import failed: ${imported.stderr}`);
    return c;
  }

  /** containerd's output so far (the shim's log lines included). */
  get output(): string {
    return this.log();
  }

  /** Runs ctr against this containerd; `stdin` is written and closed (default: none). */
  ctr(args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<CtrResult> {
    return new Promise((resolve, reject) => {
      const child = spawn('ctr', ['--address', this.socket, '--namespace', NAMESPACE, ...args], { env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '', stderr = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      // ctr may exit without reading its stdin (a run that fails early): EPIPE on it is not the test's failure.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.stdin ?? '');
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Follows `ctr events`; stop() ends it and resolves with the topics seen in order (or whole "topic event" lines). */
  events(): { stop(withEvents?: boolean): Promise<string[]> } {
    const child = spawn('ctr', ['--address', this.socket, 'events'], { env: this.env, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    return {
      stop: async (withEvents = false) => {
        // Events reach containerd asynchronously: give the last ones a moment.
        await new Promise((r) => setTimeout(r, 500));
        child.kill('SIGTERM');
        if (child.exitCode === null) await new Promise((r) => child.once('close', r));
        // Lines are "<timestamp with spaces> <namespace> <topic> <event>".
        return out.split('\n').map((l) => {
          const at = l.indexOf(' /');
          return at < 0 ? '' : withEvents ? l.slice(at + 1) : l.slice(at + 1).split(' ')[0]!;
        }).filter((t) => t !== '');
      },
    };
  }

  /** Stops containerd and removes its directory (after unmounting what it left, if anything). */
  async stop(): Promise<void> {
    // Tasks a failed test left running would keep their shims (and VMs) after containerd.
    for (const id of (await this.ctr(['task', 'ls', '-q'])).stdout.split('\n').filter(Boolean)) {
      await this.ctr(['task', 'rm', '-f', id]);
    }
    this.daemon.kill('SIGTERM');
    if (this.daemon.exitCode === null) await new Promise((r) => this.daemon.once('exit', r));
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4])
      .filter((m): m is string => m !== undefined && m.startsWith(this.dir + '/')).sort((a, b) => b.length - a.length);
    for (const m of mounts) execFileSync('umount', ['-l', m]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A docker-save archive of one layer: /bin/busybox with a symlink per applet, and /tmp. */
function buildBusyboxImage(dir: string): string {
  const work = path.join(dir, 'image');
  const rootfs = path.join(work, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'tmp'), { mode: 0o1777 });
  fs.copyFileSync(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
  const archive = path.join(work, 'archive');
  fs.mkdirSync(archive);
  execFileSync('tar', ['-C', rootfs, '--numeric-owner', '--owner=0', '--group=0', '-cf', path.join(archive, 'layer.tar'), '.']);
  const diffId = `sha256:${createHash('sha256').update(fs.readFileSync(path.join(archive, 'layer.tar'))).digest('hex')}`;
  fs.writeFileSync(path.join(archive, 'config.json'), JSON.stringify({
    architecture: 'amd64', os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
  }));
  fs.writeFileSync(path.join(archive, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: [IMAGE], Layers: ['layer.tar'] }]));
  const tarball = path.join(work, 'busybox.tar');
  execFileSync('tar', ['-C', archive, '-cf', tarball, 'manifest.json', 'config.json', 'layer.tar']);
  return tarball;
}

/** Our processes (shims: they run main.js), mounts, sockets and sandbox directories still around, for leak checks. */
export function leftovers(c: Containerd): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(SHIM)) found.push(`process ${pid}: ${cmdline.replace(/\0/g, ' ')}`);
    } catch { /* gone */ }
  }
  for (const m of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4])) {
    if (m && m.startsWith(c.dir + '/')) found.push(`mount ${m}`);
  }
  const stateDir = path.join(c.dir, 'hako');
  const shimDir = path.join(stateDir, 'shim');
  for (const s of fs.existsSync(shimDir) ? fs.readdirSync(shimDir) : []) found.push(`socket ${path.join(shimDir, s)}`);
  for (const d of fs.existsSync(stateDir) ? fs.readdirSync(stateDir) : []) {
    if (d !== 'shim') found.push(`sandbox state ${path.join(stateDir, d)}`);
  }
  return found;
}
