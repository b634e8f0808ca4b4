// One process in a container (its init or an exec'd one) as the Node API
// shows it: stdio as Node streams over the agent's calls, wait, kill, resize.
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { AgentClient } from '../agent/client.js';
import type { ProcessId } from '../agent/messages.js';
import { stderrStream, stdinStream, stdoutStream } from '../agent/stdio.js';
import { HakoError } from '../errors.js';

export interface ExitStatus {
  /** The exit code, or 128 + the signal's number when a signal killed it. */
  exitCode: number;
  /** The signal's name (e.g. 'SIGKILL') when a signal killed it. */
  signal?: NodeJS.Signals;
  /** The container's cgroup recorded an out-of-memory kill. */
  oomKilled: boolean;
}

/** A signal's number from its name ('SIGTERM', 'TERM') or number; throws INVALID_ARGUMENT for anything else. */
export function signalNumber(signal: NodeJS.Signals | string | number): number {
  if (typeof signal === 'number') {
    if (Number.isInteger(signal) && signal >= 1 && signal <= 64) return signal;
  } else {
    const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`) as NodeJS.Signals;
    const number = constants.signals[name];
    if (number !== undefined) return number;
  }
  throw new HakoError('INVALID_ARGUMENT', `signal must be a signal name such as SIGTERM or a number from 1 to 64, got ${JSON.stringify(signal)}`);
}

function signalName(number: number): NodeJS.Signals | undefined {
  return (Object.entries(constants.signals) as [NodeJS.Signals, number][]).find(([, n]) => n === number)?.[0];
}

export class ContainerProcess {
  /** Present when the process was created with stdin: true; end() closes the process's stdin. */
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  /** Ends at once with a tty (stderr goes to the terminal, i.e. stdout). */
  readonly stderr: Readable;
  private exited?: Promise<ExitStatus>;

  constructor(
    protected readonly agent: AgentClient,
    readonly ids: ProcessId,
    /** The process id in the guest (0 until the agent reported it). */
    public pid: number,
    withStdin: boolean,
  ) {
    this.stdin = withStdin ? stdinStream(agent, ids) : null;
    this.stdout = stdoutStream(agent, ids);
    this.stderr = stderrStream(agent, ids);
  }

  /** Resolves when the process has exited; the same promise for every call. */
  wait(options: { signal?: AbortSignal } = {}): Promise<ExitStatus> {
    if (options.signal) return this.agent.waitProcess(this.ids, { signal: options.signal }).then(toExitStatus);
    this.exited ??= this.agent.waitProcess(this.ids).then(toExitStatus);
    return this.exited;
  }

  /** Sends `signal` (default SIGTERM) to the process. */
  async kill(signal: NodeJS.Signals | number = 'SIGTERM'): Promise<void> {
    await this.agent.signalProcess({ ...this.ids, signal: signalNumber(signal), all: false });
  }

  /** Sets the terminal size of a process started with tty: true. */
  async resize(size: { rows: number; cols: number }): Promise<void> {
    for (const [name, value] of Object.entries(size)) {
      if (!Number.isInteger(value) || value < 1 || value > 0xffff) {
        throw new HakoError('INVALID_ARGUMENT', `terminal ${name} must be an integer from 1 to 65535, got ${value}`);
      }
    }
    await this.agent.resizeTty({ ...this.ids, rows: size.rows, cols: size.cols });
  }
}

function toExitStatus(r: { exitCode: number; signal: number; oomKilled: boolean }): ExitStatus {
  const signal = r.signal ? signalName(r.signal) : undefined;
  return { exitCode: r.exitCode, ...(signal ? { signal } : {}), oomKilled: r.oomKilled };
}
