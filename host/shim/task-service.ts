// containerd.task.v2.Task for one shim: its tasks (containers) run in one
// hako sandbox, created with the first task. Every process's exit is awaited
// once; its stdout and stderr are copied to the end before Wait answers, so a
// client that waited has all the output.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import type { Container } from '../sandbox/container.js';
import type { ContainerProcess, ExitStatus } from '../sandbox/process.js';
import { Sandbox, type SandboxOptions } from '../sandbox/sandbox.js';
import type { Handler } from '../ttrpc/server.js';
import { Code, TtrpcError } from '../ttrpc/status.js';
import { processOptions, readBundle } from './bundle.js';
import type { EventPublisher } from './events.js';
import { Status, taskMethod, timestamp, toAny } from './proto.js';
import { mountAll, unmountAll, type Mount } from './rootfs.js';
import { TaskStdio, type StdioPaths } from './stdio.js';

/** How long an exited process's output may keep flowing (a child holding its stdout) before Wait answers anyway. */
const DRAIN_TIMEOUT_MS = 5000;
/** The status of a task whose VM stopped under it: killed, as with SIGKILL. */
const VM_LOST_STATUS = 128 + 9;
/** Written into each bundle: the sandbox's state directory, for `delete` after a lost shim. */
export const SANDBOX_DIR_FILE = 'hako-sandbox-dir';

interface Exit {
  status: number;
  at: Date;
}

/** A task's init process or an exec'd one. */
class Proc {
  process?: ContainerProcess;
  pid = 0;
  started = false;
  exit?: Exit;
  stdio?: TaskStdio;
  private settle!: (exit: Exit) => void;
  readonly exited = new Promise<Exit>((resolve) => { this.settle = resolve; });

  constructor(readonly execId: string, readonly paths: StdioPaths, readonly terminal: boolean, readonly spec?: object) {}

  get status(): number {
    if (this.exit) return Status.STOPPED;
    return this.started ? Status.RUNNING : Status.CREATED;
  }

  setExited(status: number): Exit {
    this.exit ??= { status, at: new Date() };
    this.settle(this.exit);
    this.stdio?.close();
    return this.exit;
  }
}

interface Task {
  id: string;
  bundle: string;
  rootfs?: string;
  container: Container;
  init: Proc;
  execs: Map<string, Proc>;
  /** Frozen by Pause until Resume: its live processes report PAUSED. */
  paused: boolean;
}

export interface TaskServiceOptions {
  events: EventPublisher;
  log: (line: string) => void;
  /** Every call and its answer (containerd's -debug). */
  debug?: (line: string) => void;
  sandbox?: SandboxOptions;
  /**
   * 'bundle' (default): the container's root is the bundle's rootfs shared with virtio-fs; 'image': the
   * sandbox's own root file system image, whatever the container's image (for guests without virtio-fs).
   */
  rootfs?: 'bundle' | 'image';
  /** Called after Shutdown answered, when no task is left: the daemon exits. */
  onShutdown: () => void;
}

export class TaskService {
  private sandbox?: Promise<Sandbox>;
  private readonly tasks = new Map<string, Task>();

  constructor(private readonly opts: TaskServiceOptions) {}

  /** The handlers of every method, for Server.register(TASK_SERVICE, ...). */
  handlers(): Record<string, Handler> {
    const methods: Record<string, (request: any) => Promise<object> | object> = {
      State: (r) => this.state(r),
      Create: (r) => this.create(r),
      Start: (r) => this.start(r),
      Delete: (r) => this.delete(r),
      Pids: (r) => this.pids(r),
      Pause: (r) => this.pause(r),
      Resume: (r) => this.resume(r),
      Checkpoint: () => unimplemented('Checkpoint: hako does not checkpoint containers'),
      Kill: (r) => this.kill(r),
      Exec: (r) => this.exec(r),
      ResizePty: (r) => this.resizePty(r),
      CloseIO: (r) => this.closeIO(r),
      Update: (r) => this.update(r),
      Wait: (r) => this.wait(r),
      Stats: (r) => this.stats(r),
      Connect: (r) => this.connect(r),
      Shutdown: () => this.shutdown(),
    };
    return Object.fromEntries(Object.entries(methods).map(([name, method]) => {
      const { request, response } = taskMethod(name);
      const handler: Handler = async (payload) => {
        let decoded: object;
        try {
          decoded = request.toObject(request.decode(payload), { defaults: true, longs: Number, arrays: true });
        } catch (e) {
          throw new TtrpcError(Code.INVALID_ARGUMENT, `${name}: malformed ${request.name}: ${(e as Error).message}`);
        }
        this.opts.debug?.(`${name} ${JSON.stringify(decoded)}`);
        try {
          const answer = await method(decoded);
          this.opts.debug?.(`${name} answered ${JSON.stringify(answer)}`);
          return response.encode(response.fromObject(answer)).finish();
        } catch (e) {
          // containerd asks about tasks it is still creating: NOT_FOUND is routine.
          const routine = e instanceof TtrpcError && e.code === Code.NOT_FOUND;
          (routine ? this.opts.debug : this.opts.log)?.(`${name} failed: ${(e as Error).message}`);
          throw toTtrpcError(e, name);
        }
      };
      return [name, handler];
    }));
  }

  /** The pod's sandbox, created for its first task; should its VM stop, every process in it has exited (137). */
  private sandboxFor(): Promise<Sandbox> {
    this.sandbox ??= Sandbox.create({ ...this.opts.sandbox, progress: (l) => this.opts.log(l) }).then((sandbox) => {
      void sandbox.exited.then((e) => {
        this.opts.log(`the sandbox's VM stopped: ${e.detail}`);
        for (const task of this.tasks.values()) {
          for (const proc of [task.init, ...task.execs.values()]) {
            if (!proc.exit && proc.started) this.exited(task, proc, { exitCode: VM_LOST_STATUS, oomKilled: false });
          }
        }
      });
      return sandbox;
    });
    this.sandbox.catch(() => { this.sandbox = undefined; });
    return this.sandbox;
  }

  private task(id: string): Task {
    const task = this.tasks.get(id);
    if (task === undefined) throw new TtrpcError(Code.NOT_FOUND, `task ${id} not found`);
    return task;
  }

  private proc(id: string, execId: string): { task: Task; proc: Proc } {
    const task = this.task(id);
    if (execId === '') return { task, proc: task.init };
    const proc = task.execs.get(execId);
    if (proc === undefined) throw new TtrpcError(Code.NOT_FOUND, `exec ${execId} of task ${id} not found`);
    return { task, proc };
  }

  private state(r: { id: string; execId: string }): object {
    const { task, proc } = this.proc(r.id, r.execId);
    return {
      id: task.id, bundle: task.bundle, pid: proc.pid, status: task.paused && !proc.exit ? Status.PAUSED : proc.status, ...proc.paths, terminal: proc.terminal,
      exitStatus: proc.exit?.status ?? 0, exitedAt: timestamp(proc.exit?.at ?? new Date(0)), execId: proc.execId,
    };
  }

  private async create(r: { id: string; bundle: string; rootfs: Mount[]; terminal: boolean; stdin: string; stdout: string; stderr: string; checkpoint: string }): Promise<object> {
    if (this.tasks.has(r.id)) throw new TtrpcError(Code.ALREADY_EXISTS, `task ${r.id} already exists`);
    if (r.checkpoint) unimplemented('Create from a checkpoint: hako does not restore checkpoints');
    const spec = readBundle(r.bundle, r.terminal);
    let rootfs: string | undefined;
    if (r.rootfs.length > 0) {
      rootfs = path.join(r.bundle, 'rootfs');
      mountAll(r.rootfs, rootfs);
    }
    try {
      const sandbox = await this.sandboxFor();
      fs.writeFileSync(path.join(r.bundle, SANDBOX_DIR_FILE), sandbox.dir);
      const container = await sandbox.createContainer({
        id: r.id,
        ...spec.process,
        stdin: r.stdin !== '',
        ...(this.opts.rootfs === 'image' ? {} : { rootfs: { directory: path.resolve(r.bundle, spec.rootPath), readOnly: spec.rootReadOnly } }),
        ...(spec.hostname ? { hostname: spec.hostname } : {}),
        volumes: spec.volumes,
        ...(spec.memoryLimitBytes !== undefined ? { memoryLimitBytes: spec.memoryLimitBytes } : {}),
      });
      for (const skipped of spec.skippedMounts) this.opts.log(`task ${r.id}: mount ${skipped}`);
      const init = new Proc('', { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr }, r.terminal);
      init.process = container;
      init.pid = container.pid;
      const task: Task = { id: r.id, bundle: r.bundle, ...(rootfs ? { rootfs } : {}), container, init, execs: new Map(), paused: false };
      this.tasks.set(r.id, task);
      init.stdio = await TaskStdio.attach(init.paths, container);
      this.opts.events.publish('TaskCreate', {
        containerId: r.id, bundle: r.bundle, rootfs: r.rootfs,
        io: { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal }, pid: init.pid,
      });
      return { pid: init.pid };
    } catch (e) {
      if (rootfs && !this.tasks.has(r.id)) unmountAll(rootfs);
      throw e;
    }
  }

  private async start(r: { id: string; execId: string }): Promise<object> {
    const { task, proc } = this.proc(r.id, r.execId);
    if (proc.started) throw new TtrpcError(Code.FAILED_PRECONDITION, `${describe(task, proc)} was already started`);
    if (proc.execId === '') {
      await task.container.start();
    } else {
      const opts = processOptions(proc.spec ?? {}, proc.terminal, `exec ${proc.execId}`);
      const process = await task.container.exec({ ...opts, execId: proc.execId, stdin: proc.paths.stdin !== '' });
      proc.process = process;
      proc.pid = process.pid;
      proc.stdio = await TaskStdio.attach(proc.paths, process);
    }
    proc.started = true;
    if (proc.execId === '') this.opts.events.publish('TaskStart', { containerId: task.id, pid: proc.pid });
    else this.opts.events.publish('TaskExecStarted', { containerId: task.id, execId: proc.execId, pid: proc.pid });
    void proc.process!.wait().then(
      (status) => this.exited(task, proc, status),
      (e: Error) => {
        this.opts.log(`waiting for ${describe(task, proc)} failed: ${e.message}`);
        this.exited(task, proc, { exitCode: VM_LOST_STATUS, oomKilled: false });
      },
    );
    return { pid: proc.pid };
  }

  /** Records an exit once its output is copied, then tells containerd (TaskOOM first when the OOM killer did it). */
  private exited(task: Task, proc: Proc, status: ExitStatus): void {
    if (proc.exit) return;
    const drained = proc.stdio?.drained ?? Promise.resolve();
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS).unref());
    void Promise.race([drained, timeout]).then(() => {
      if (proc.exit) return;
      const exit = proc.setExited(status.exitCode);
      if (status.oomKilled) this.opts.events.publish('TaskOOM', { containerId: task.id });
      this.opts.events.publish('TaskExit', {
        containerId: task.id, id: proc.execId || task.id, pid: proc.pid, exitStatus: exit.status, exitedAt: timestamp(exit.at),
      });
    });
  }

  private async delete(r: { id: string; execId: string }): Promise<object> {
    const { task, proc } = this.proc(r.id, r.execId);
    if (proc.started && !proc.exit) throw new TtrpcError(Code.FAILED_PRECONDITION, `${describe(task, proc)} is still running: kill it first`);
    const exit = proc.setExited(proc.exit?.status ?? VM_LOST_STATUS);
    if (proc.execId !== '') {
      task.execs.delete(proc.execId);
    } else {
      this.tasks.delete(task.id);
      try {
        await task.container.remove();
      } catch (e) {
        // The VM may be gone already: what is left of the container went with it.
        this.opts.log(`removing container ${task.id}: ${(e as Error).message}`);
      }
      if (task.rootfs) unmountAll(task.rootfs);
      this.opts.events.publish('TaskDelete', { containerId: task.id, pid: proc.pid, exitStatus: exit.status, exitedAt: timestamp(exit.at), id: '' });
    }
    return { pid: proc.pid, exitStatus: exit.status, exitedAt: timestamp(exit.at) };
  }

  private async pids(r: { id: string }): Promise<object> {
    const pids = await this.task(r.id).container.processes();
    return { processes: pids.map((pid) => ({ pid })) };
  }

  private async pause(r: { id: string }): Promise<object> {
    const task = this.task(r.id);
    if (task.init.exit) throw new TtrpcError(Code.FAILED_PRECONDITION, `task ${task.id} has exited`);
    if (task.paused) throw new TtrpcError(Code.FAILED_PRECONDITION, `task ${task.id} is already paused`);
    await task.container.pause();
    task.paused = true;
    this.opts.events.publish('TaskPaused', { containerId: task.id });
    return {};
  }

  private async resume(r: { id: string }): Promise<object> {
    const task = this.task(r.id);
    if (!task.paused) throw new TtrpcError(Code.FAILED_PRECONDITION, `task ${task.id} is not paused`);
    await task.container.resume();
    task.paused = false;
    this.opts.events.publish('TaskResumed', { containerId: task.id });
    return {};
  }

  /** containerd sends the OCI LinuxResources as JSON in an Any (Go's typeurl marshals non-proto types so). */
  private async update(r: { id: string; resources: { type_url: string; value: Uint8Array } | null }): Promise<object> {
    const task = this.task(r.id);
    if (!r.resources || !r.resources.type_url.endsWith('LinuxResources')) {
      throw new TtrpcError(Code.INVALID_ARGUMENT, `Update of task ${task.id}: resources must be an OCI LinuxResources, ` +
        `not ${r.resources ? `'${r.resources.type_url}'` : 'missing'}`);
    }
    let resources: object;
    try {
      resources = JSON.parse(Buffer.from(r.resources.value).toString('utf8'));
    } catch (e) {
      throw new TtrpcError(Code.INVALID_ARGUMENT, `Update of task ${task.id}: resources are not JSON: ${(e as Error).message}`);
    }
    await task.container.update(resources);
    return {};
  }

  private async kill(r: { id: string; execId: string; signal: number; all: boolean }): Promise<object> {
    const { task, proc } = this.proc(r.id, r.execId);
    if (proc.exit) throw new TtrpcError(Code.NOT_FOUND, `${describe(task, proc)}: process already finished`);
    if (proc.execId === '') await task.container.kill(r.signal, { all: r.all });
    else if (proc.process) await proc.process.kill(r.signal);
    else throw new TtrpcError(Code.FAILED_PRECONDITION, `${describe(task, proc)} was not started`);
    return {};
  }

  private exec(r: { id: string; execId: string; terminal: boolean; stdin: string; stdout: string; stderr: string; spec: { value: Uint8Array } | null }): object {
    const task = this.task(r.id);
    if (task.init.exit) throw new TtrpcError(Code.FAILED_PRECONDITION, `task ${r.id} has exited`);
    if (task.execs.has(r.execId)) throw new TtrpcError(Code.ALREADY_EXISTS, `exec ${r.execId} of task ${r.id} already exists`);
    let spec: object;
    try {
      spec = JSON.parse(Buffer.from(r.spec?.value ?? []).toString('utf8'));
    } catch (e) {
      throw new TtrpcError(Code.INVALID_ARGUMENT, `exec ${r.execId}: the process spec is not OCI JSON: ${(e as Error).message}`);
    }
    task.execs.set(r.execId, new Proc(r.execId, { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr }, r.terminal, spec));
    this.opts.events.publish('TaskExecAdded', { containerId: r.id, execId: r.execId });
    return {};
  }

  private async resizePty(r: { id: string; execId: string; width: number; height: number }): Promise<object> {
    const { task, proc } = this.proc(r.id, r.execId);
    if (!proc.process || !proc.terminal) throw new TtrpcError(Code.FAILED_PRECONDITION, `${describe(task, proc)} has no running terminal`);
    await proc.process.resize({ rows: r.height, cols: r.width });
    return {};
  }

  private closeIO(r: { id: string; execId: string; stdin: boolean }): object {
    const { proc } = this.proc(r.id, r.execId);
    if (r.stdin) proc.stdio?.closeStdin();
    return {};
  }

  private async wait(r: { id: string; execId: string }): Promise<object> {
    const { proc } = this.proc(r.id, r.execId);
    const exit = await proc.exited;
    return { exitStatus: exit.status, exitedAt: timestamp(exit.at) };
  }

  private async stats(r: { id: string }): Promise<object> {
    const s = await this.task(r.id).container.stats();
    return {
      stats: toAny('io.containerd.cgroups.v2.Metrics', {
        pids: { current: s.pidsCurrent },
        cpu: { usageUsec: s.cpuUsageUsec, userUsec: s.cpuUserUsec, systemUsec: s.cpuSystemUsec },
        memory: { usage: s.memoryCurrent, usageLimit: s.memoryMax },
        memoryEvents: { oomKill: s.oomKills },
      }),
    };
  }

  private connect(r: { id: string }): object {
    return { shimPid: process.pid, taskPid: this.tasks.get(r.id)?.init.pid ?? 0, version: 'hako' };
  }

  /** Ends the shim once its last task is deleted; containerd calls it after every Delete. */
  private shutdown(): object {
    if (this.tasks.size === 0) setImmediate(() => this.opts.onShutdown());
    return {};
  }

  /** Destroys the sandbox (its VM) if there is one; for the daemon's exit. */
  async close(): Promise<void> {
    const sandbox = await this.sandbox?.catch(() => undefined);
    await sandbox?.destroy();
  }
}

function describe(task: Task, proc: Proc): string {
  return proc.execId === '' ? `task ${task.id}` : `exec ${proc.execId} of task ${task.id}`;
}

function unimplemented(message: string): never {
  throw new TtrpcError(Code.UNIMPLEMENTED, message);
}

/** containerd reads the gRPC code: invalid requests are INVALID_ARGUMENT, the rest keep theirs or are INTERNAL. */
function toTtrpcError(e: unknown, method: string): TtrpcError {
  if (e instanceof TtrpcError) return e;
  const message = `${method}: ${e instanceof Error ? e.message : String(e)}`;
  if (e instanceof HakoError && e.code === 'INVALID_ARGUMENT') return new TtrpcError(Code.INVALID_ARGUMENT, message);
  return new TtrpcError(Code.INTERNAL, message);
}
