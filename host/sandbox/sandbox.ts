// A sandbox: one microVM, cloned from the bundled guest's template, whose
// agent runs the sandbox's containers (a pod). destroy() releases the VM, its
// sockets and its state directory, also after errors; `await using` works.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AGENT_PORT, AgentClient } from '../agent/client.js';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { traceAreas } from '../config/logging.js';
import { checkSandboxGuest, pvmHost, stateDir } from '../config/settings.js';
import { HakoError } from '../errors.js';
import { Code, TtrpcError } from '../ttrpc/status.js';
import { bundledRootfsImage, imageRoot } from '../image/cache.js';
import { templateRoot } from '../template/cache.js';
import { startClone } from '../template/clone.js';
import { ensureTemplate } from '../template/create.js';
import { bundledTemplateSpec } from '../template/spec.js';
import { Vm, type VmExit } from '../vmm/vm.js';
import { connectVsock } from '../vsock/client.js';
import { Container } from './container.js';
import { checkId, containerSpec, type ContainerOptions } from './oci-spec.js';
import { SandboxShare, SHARE_TAG, unmountAndRemove } from './shares.js';

export interface SandboxOptions {
  /**
   * Defaults for the options below and the host's settings (hypervisor, guest.rng, virtiofs, caches,
   * logging.trace), as `hako` uses them (default: loadConfig(), the file $HAKO_CONFIG or
   * /etc/hako/configuration.toml names, with its config.d drop-ins).
   */
  config?: LoadedConfig;
  /** Default: resources.vcpus. */
  vcpus?: number;
  /** Default: resources.memory_mib. */
  memoryMiB?: number;
  /** An ext4 image holding the containers' root file system (default: the bundled busybox image). */
  rootfsImage?: string;
  /** Where the sandbox keeps its sockets (default $HAKO_STATE_DIR, else paths.state_dir). */
  stateDir?: string;
  /** The guest's serial console output (default: kept in memory for error messages only). */
  console?: (chunk: Buffer) => void;
  /** Template creation progress for humans (the first sandbox of a shape cold-boots the guest once). */
  progress?: (line: string) => void;
  signal?: AbortSignal;
}

/** The guest sees the rootfs image as its first disk. */
const ROOTFS_DEVICE = '/dev/vda';
const AGENT_TIMEOUT_MS = 30_000;
const CONSOLE_TAIL_BYTES = 4096;

/** $HAKO_STATE_DIR, else paths.state_dir of the configuration `env` names. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return stateDir(loadConfig({ env }), env);
}

/**
 * Connects to the agent of a freshly restored VM and checks it answers. A
 * connection made before the guest handled the restore's transport reset is
 * reset with it, so a connection closed that early is retried.
 */
async function connectAgent(socketPath: string, signal: AbortSignal | undefined): Promise<AgentClient> {
  const deadline = Date.now() + AGENT_TIMEOUT_MS;
  for (;;) {
    const timeoutMs = Math.max(1, deadline - Date.now());
    const agent = new AgentClient(await connectVsock(socketPath, AGENT_PORT, { signal, timeoutMs }));
    try {
      await agent.version({ timeoutMs, signal });
      return agent;
    } catch (e) {
      agent.close();
      if (!(e instanceof TtrpcError && e.code === Code.UNAVAILABLE) || Date.now() >= deadline) throw e;
    }
  }
}

export class Sandbox {
  private destroyed?: Promise<void>;
  private readonly containers = new Map<string, Container>();

  private constructor(
    readonly id: string,
    /** The sandbox's state directory (its vsock socket and shared directory live there). */
    readonly dir: string,
    private readonly vm: Vm,
    private readonly share: SandboxShare,
    /** Resolves when the VM stops, for whatever reason. */
    readonly exited: Promise<VmExit>,
    private readonly agent: AgentClient,
  ) {}

  static async create(opts: SandboxOptions = {}): Promise<Sandbox> {
    const config = opts.config ?? loadConfig();
    const { vcpus = config.values.resources.vcpus, memoryMiB = config.values.resources.memory_mib, signal } = opts;
    signal?.throwIfAborted();
    const pvm = pvmHost(config);
    checkSandboxGuest(config, pvm);
    const rootfsImage = opts.rootfsImage ?? bundledRootfsImage(undefined, imageRoot(process.env, config));
    const template = await ensureTemplate(bundledTemplateSpec({ vcpus, memoryMiB }, pvm, config), templateRoot(process.env, config), {
      progress: opts.progress,
    });
    signal?.throwIfAborted();

    const id = randomBytes(6).toString('hex');
    const dir = path.join(opts.stateDir ?? stateDir(config), id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    let tail = '';
    let vm: Vm | undefined;
    let exited: Promise<VmExit> | undefined;
    try {
      const share = new SandboxShare(dir);
      vm = await Vm.restore(template.dir, {
        pvmHost: pvm,
        trace: traceAreas(config),
        console: (chunk) => {
          tail = (tail + chunk.toString('latin1')).slice(-CONSOLE_TAIL_BYTES);
          opts.console?.(chunk);
        },
        disks: [{ path: rootfsImage, readOnly: true }],
        vsock: { socketPath: path.join(dir, 'vsock.sock'), cid: 3 },
        shares: [{ path: share.root, tag: SHARE_TAG }],
      });
      exited = startClone(vm);
      const early = exited.then((e) => {
        throw new HakoError('VM_FAILED', `the sandbox's VM stopped before its agent answered: ${e.detail}\n${tail}`);
      });
      const agent = await Promise.race([connectAgent(path.join(dir, 'vsock.sock'), signal), early]);
      early.catch(() => {});
      return new Sandbox(id, dir, vm, share, exited, agent);
    } catch (e) {
      vm?.stop();
      await exited;
      unmountAndRemove(dir);
      throw e;
    }
  }

  /**
   * Creates (but does not start) a container: its root file system is the
   * sandbox's image, or a host directory (opts.rootfs) shared with virtio-fs
   * like its volumes.
   */
  async createContainer(opts: ContainerOptions, call: { signal?: AbortSignal } = {}): Promise<Container> {
    if (this.destroyed) throw new HakoError('INVALID_ARGUMENT', `sandbox ${this.id} has been destroyed`);
    checkId(opts.id, 'container id');
    if (this.containers.has(opts.id)) {
      throw new HakoError('INVALID_ARGUMENT', `sandbox ${this.id} already has a container ${JSON.stringify(opts.id)}`);
    }
    containerSpec(opts); // every option checked before anything is mounted
    const hostDir = path.join(this.share.root, opts.id);
    try {
      const volumeSources = (opts.volumes ?? []).map((v, i) => this.share.addVolume(opts.id, i, v.source, v.readOnly ?? false));
      const rootfs = opts.rootfs
        ? { fstype: 'virtiofs', path: this.share.addRootfs(opts.id, opts.rootfs.directory, opts.rootfs.readOnly ?? false), overlay: opts.rootfs.readOnly ?? false }
        : { device: ROOTFS_DEVICE, fstype: 'ext4' };
      const { pid } = await this.agent.createContainer({
        containerId: opts.id,
        ociSpec: Buffer.from(JSON.stringify(containerSpec(opts, volumeSources))),
        rootfs,
        stdio: { tty: opts.tty ?? false, stdin: opts.stdin ?? false },
      }, { signal: call.signal });
      const container = new Container(this.agent, opts.id, pid, opts.stdin ?? false, () => {
        this.containers.delete(opts.id);
        unmountAndRemove(hostDir);
      });
      this.containers.set(opts.id, container);
      return container;
    } catch (e) {
      unmountAndRemove(hostDir);
      throw e;
    }
  }

  /** Stops the VM and removes the sandbox's state; safe to call more than once and after failures. */
  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      for (const c of this.containers.values()) {
        c.stdin?.destroy();
        c.stdout.destroy();
        c.stderr.destroy();
      }
      this.agent.close();
      this.vm.stop();
      await this.exited;
      unmountAndRemove(this.dir);
    })();
    return this.destroyed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }
}
