// A task process's stdio over the FIFOs containerd (or ctr) created for it:
// bytes from the stdin FIFO go to the process, its stdout and stderr go to
// theirs. Opening a FIFO blocks until its other end is open, so the opens run
// on libuv's thread pool; the FIFOs are then Node pipes (net.Socket).
import fs from 'node:fs';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { ContainerProcess } from '../sandbox/process.js';

export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
}

const open = promisify(fs.open);

async function openFifo(path: string, flags: number): Promise<net.Socket> {
  const fd = await open(path, flags);
  return new net.Socket({ fd, readable: flags === fs.constants.O_RDONLY, writable: flags !== fs.constants.O_RDONLY });
}

export class TaskStdio {
  private stdin?: net.Socket;
  private stdinClosed = false;

  private constructor(
    private readonly stdinPath: string,
    private readonly processStdin: Writable | null,
    /** Resolves when stdout and stderr were copied to the end (the process and its descendants closed them). */
    readonly drained: Promise<void>,
  ) {}

  /**
   * Opens the FIFOs named in `paths` (empty: none) and starts copying between them and `process`. The stdin
   * FIFO's writer may never come (ctr gives up on it when its own stdin ends at once), so that open goes on in
   * the background.
   */
  static async attach(paths: StdioPaths, process: ContainerProcess): Promise<TaskStdio> {
    const [stdout, stderr] = await Promise.all([
      paths.stdout ? openFifo(paths.stdout, fs.constants.O_WRONLY) : undefined,
      paths.stderr ? openFifo(paths.stderr, fs.constants.O_WRONLY) : undefined,
    ]);
    const drained = Promise.all([copy(process.stdout, stdout), copy(process.stderr, stderr)]).then(() => {});
    const stdio = new TaskStdio(paths.stdin, process.stdin, drained);
    if (paths.stdin && process.stdin) {
      openFifo(paths.stdin, fs.constants.O_RDONLY).then((fifo) => {
        if (stdio.stdinClosed) {
          fifo.destroy();
          return;
        }
        stdio.stdin = fifo;
        // The process's stdin ends (CloseStdin) when the FIFO's writer closes it.
        fifo.pipe(process.stdin!).on('error', () => {});
      }, () => process.stdin?.end());
    }
    return stdio;
  }

  /** CloseIO: ends the process's stdin without waiting for the FIFO's writer. */
  closeStdin(): void {
    this.close();
    this.processStdin?.end();
  }

  /** Stops reading stdin (the process is gone or its task deleted). */
  close(): void {
    if (this.stdinClosed) return;
    this.stdinClosed = true;
    if (this.stdin) {
      this.stdin.unpipe();
      this.stdin.destroy();
    } else if (this.stdinPath && this.processStdin) {
      // An open still waiting for a writer holds a thread of libuv's pool: be that writer for a moment.
      try {
        fs.closeSync(fs.openSync(this.stdinPath, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
      } catch { /* no open is waiting */ }
    }
  }
}

/** Copies `from` into the FIFO `to` (or discards it) and closes the FIFO at the end; never rejects. */
async function copy(from: Readable, to: net.Socket | undefined): Promise<void> {
  try {
    if (to === undefined) {
      from.resume();
      await finished(from);
      return;
    }
    await pipeline(from, to);
  } catch {
    // The reader went away or the agent's stream failed: either way the copy is over.
  } finally {
    to?.destroy();
  }
}
