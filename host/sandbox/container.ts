// A container in a sandbox: its init process plus exec, signals to all its
// processes, stats and removal, all through the guest agent.
import type { AgentClient } from '../agent/client.js';
import type { StatsContainerResponse } from '../agent/messages.js';
import { checkId, processSpec, type ProcessOptions } from './oci-spec.js';
import { ContainerProcess, signalNumber } from './process.js';

export type ContainerStats = StatsContainerResponse;

export class Container extends ContainerProcess {
  private execs = 0;

  /** `released` runs once the agent removed the container: the sandbox then drops its host-side mounts. */
  constructor(agent: AgentClient, readonly id: string, pid: number, withStdin: boolean, private readonly released: () => void) {
    super(agent, { containerId: id, execId: '' }, pid, withStdin);
  }

  /** Runs the container's process (created, not yet running, until this resolves). */
  async start(): Promise<void> {
    await this.agent.startContainer({ containerId: this.id });
  }

  /** Starts another process in the running container; `execId` defaults to a fresh "exec-<n>". */
  async exec(opts: ProcessOptions & { execId?: string }): Promise<ContainerProcess> {
    const execId = checkId(opts.execId ?? `exec-${++this.execs}`, 'exec id');
    const { pid } = await this.agent.execProcess({
      containerId: this.id,
      execId,
      process: Buffer.from(JSON.stringify(processSpec(opts))),
      stdio: { tty: opts.tty ?? false, stdin: opts.stdin ?? false },
    });
    return new ContainerProcess(this.agent, { containerId: this.id, execId }, pid, opts.stdin ?? false);
  }

  /** Signals the init process, or with `all` every process of the container. */
  override async kill(signal: NodeJS.Signals | number = 'SIGTERM', options: { all?: boolean } = {}): Promise<void> {
    await this.agent.signalProcess({ containerId: this.id, execId: '', signal: signalNumber(signal), all: options.all ?? false });
  }

  /** CPU, memory and pid counts from the container's cgroup. */
  stats(): Promise<ContainerStats> {
    return this.agent.statsContainer({ containerId: this.id });
  }

  /** Freezes every process of the container (created or running) until resume(). */
  async pause(): Promise<void> {
    await this.agent.pauseContainer({ containerId: this.id });
  }

  async resume(): Promise<void> {
    await this.agent.resumeContainer({ containerId: this.id });
  }

  /** Changes its limits: `resources` is an OCI linux.resources object (memory, cpu and pids are applied). */
  async update(resources: object): Promise<void> {
    await this.agent.updateContainer({ containerId: this.id, resources: Buffer.from(JSON.stringify(resources)) });
  }

  /** The guest pids of the container's processes. */
  async processes(): Promise<number[]> {
    return (await this.agent.listProcesses({ containerId: this.id })).pids;
  }

  /** Kills what is left of it and releases its mounts and cgroup in the guest. */
  async remove(): Promise<void> {
    this.stdin?.destroy();
    this.stdout.destroy();
    this.stderr.destroy();
    await this.agent.removeContainer({ containerId: this.id });
    this.released();
  }
}
