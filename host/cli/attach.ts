// A container process on this terminal, for `hako run` and `hako exec`:
// its stdout and stderr to ours, our stdin to it (with -i), our terminal in
// raw mode and its size followed (with -t), and our signals forwarded to it.
import { constants } from 'node:os';
import { finished } from 'node:stream/promises';
import type { ContainerProcess, ExitStatus } from '../sandbox/process.js';

export interface AttachOptions {
  /** The process has a pseudo-terminal. */
  tty: boolean;
  /** The process was created with stdin open: our stdin goes to it. */
  stdin: boolean;
  /** Runs the process once its output is being read (a container's start); exec'd processes already run. */
  start?: () => Promise<void>;
  /** A second signal gives up on the process: `abandon` must end the wait (e.g. destroy the sandbox). */
  abandon: () => void;
}

/** The signals a user sends to stop what runs in the foreground. */
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;

/**
 * Signals to hako while a process is being set up or runs: the first one of
 * each phase goes to `onFirst`, the next one to `onSecond`. Until listen() is
 * called again, they do what the phase said.
 */
export class SignalRelay {
  /** The last signal received, if any: hako's exit status is 128 + its number when it gave up. */
  received?: NodeJS.Signals;
  private count = 0;
  private handlers: { onFirst: (s: NodeJS.Signals) => void; onSecond: (s: NodeJS.Signals) => void } | undefined;
  private readonly listener = (signal: NodeJS.Signals) => {
    this.received = signal;
    this.count++;
    if (this.count === 1) this.handlers?.onFirst(signal);
    else this.handlers?.onSecond(signal);
  };

  constructor() {
    for (const s of FORWARDED_SIGNALS) process.on(s, this.listener);
  }

  /** Starts a phase: the count of signals starts over. */
  listen(onFirst: (s: NodeJS.Signals) => void, onSecond: (s: NodeJS.Signals) => void): void {
    this.count = 0;
    this.handlers = { onFirst, onSecond };
  }

  /** 128 + the number of the signal received (the shell's convention), or undefined. */
  get exitStatus(): number | undefined {
    return this.received === undefined ? undefined : 128 + constants.signals[this.received];
  }

  close(): void {
    for (const s of FORWARDED_SIGNALS) process.off(s, this.listener);
  }
}

/** Connects `proc` to this process's stdio until it has exited and its output is all written; returns how it exited. */
export async function attach(proc: ContainerProcess, relay: SignalRelay, opts: AttachOptions): Promise<ExitStatus> {
  const { stdout, stderr } = process;
  // Only with -i is our stdin touched at all (reading it would keep us waiting for its end).
  const input = opts.stdin && proc.stdin ? { from: process.stdin, to: proc.stdin } : undefined;
  const rawMode = opts.tty && input?.from.isTTY === true;
  const followSize = opts.tty && stdout.isTTY;
  const resize = () => {
    proc.resize({ rows: stdout.rows, cols: stdout.columns }).catch(() => {}); // it may have exited meanwhile
  };
  // Like a pipe: when our stdout closes (e.g. `| head`), the process gets SIGPIPE.
  const onStdoutError = () => {
    proc.stdout.unpipe(stdout);
    proc.stdout.resume();
    proc.kill('SIGPIPE').catch(() => {});
  };
  relay.listen((signal) => {
    proc.kill(signal).catch(() => {});
  }, () => opts.abandon());
  stdout.on('error', onStdoutError);
  proc.stdout.pipe(stdout);
  proc.stderr.pipe(stderr);
  // A read that fails (the agent went away) fails wait() too, which reports it.
  const output = Promise.all([finished(proc.stdout), finished(proc.stderr)]);
  output.catch(() => {});
  // The process's stdin fails once it exits; what we had not sent by then is not wanted.
  input?.to.on('error', () => {});
  try {
    if (followSize) {
      await proc.resize({ rows: stdout.rows, cols: stdout.columns });
      stdout.on('resize', resize);
    }
    if (rawMode) (input!.from as NodeJS.ReadStream).setRawMode(true);
    await opts.start?.();
    input?.from.pipe(input.to);
    const status = await proc.wait();
    await output;
    return status;
  } finally {
    if (input) {
      input.from.unpipe(input.to);
      input.from.pause();
      if (rawMode) (input.from as NodeJS.ReadStream).setRawMode(false);
    }
    stdout.off('resize', resize);
    stdout.off('error', onStdoutError);
    proc.stdout.unpipe(stdout);
    proc.stderr.unpipe(stderr);
  }
}
