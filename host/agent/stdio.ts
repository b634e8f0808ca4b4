// A process's stdio as Node streams over the agent's unary calls: one
// ReadStdout/ReadStderr outstanding per stream (the agent blocks it until
// output or EOF is there), so bytes arrive in order and backpressure reaches
// the guest: no read is issued while the Readable's buffer is full.
import { Readable, Writable } from 'node:stream';
import { Code, TtrpcError } from '../ttrpc/status.js';
import type { AgentClient } from './client.js';
import type { ProcessId } from './messages.js';

/** The agent's limit for one read or write. */
export const MAX_STDIO_CHUNK = 1 << 20;

export interface OutputStreamOptions {
  /** Bytes asked for per read, 1..1 MiB (default 64 KiB). */
  maxBytes?: number;
}

/** The process's stdout; ends when the agent reports EOF, errors (TtrpcError) when a read fails. */
export function stdoutStream(agent: AgentClient, process: ProcessId, options?: OutputStreamOptions): Readable {
  return outputStream((request, signal) => agent.readStdout(request, { signal }), process, options);
}

/** The process's stderr (a tty merges it into stdout). */
export function stderrStream(agent: AgentClient, process: ProcessId, options?: OutputStreamOptions): Readable {
  return outputStream((request, signal) => agent.readStderr(request, { signal }), process, options);
}

type ReadCall = (request: ProcessId & { maxBytes: number }, signal: AbortSignal) => Promise<{ data: Buffer }>;

function outputStream(read: ReadCall, process: ProcessId, options: OutputStreamOptions = {}): Readable {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_STDIO_CHUNK) {
    throw new RangeError(`maxBytes ${maxBytes}: expected an integer in 1..${MAX_STDIO_CHUNK}`);
  }
  const abort = new AbortController();
  let reading = false;
  return new Readable({
    read() {
      if (reading) return;
      reading = true;
      read({ ...process, maxBytes }, abort.signal).then(
        ({ data }) => {
          reading = false;
          if (this.destroyed) return;
          // The agent sends at most maxBytes; a non-empty answer is data, an empty one is EOF.
          this.push(data.length === 0 ? null : data);
        },
        (e: unknown) => {
          reading = false;
          this.destroy(e as Error);
        },
      );
    },
    destroy(error, callback) {
      // An abandoned read's data is lost: whoever destroys the stream does not want it.
      abort.abort(error ?? new Error('stream destroyed'));
      callback(error);
    },
  });
}

/**
 * The process's stdin: writes become WriteStdin calls of at most 1 MiB, one at
 * a time, in order; end() sends CloseStdin once everything is written.
 */
export function stdinStream(agent: AgentClient, process: ProcessId): Writable {
  const abort = new AbortController();
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      void (async () => {
        for (let offset = 0; offset < chunk.length; offset += MAX_STDIO_CHUNK) {
          const data = chunk.subarray(offset, offset + MAX_STDIO_CHUNK);
          const { written } = await agent.writeStdin({ ...process, data }, { signal: abort.signal });
          if (written !== data.length) {
            throw new TtrpcError(Code.INTERNAL, `wrote ${written} of ${data.length} bytes without an error`, { context: 'agent WriteStdin' });
          }
        }
      })().then(() => callback(), (e: Error) => callback(e));
    },
    final(callback) {
      agent.closeStdin(process, { signal: abort.signal }).then(() => callback(), (e: Error) => callback(e));
    },
    destroy(error, callback) {
      abort.abort(error ?? new Error('stream destroyed'));
      callback(error);
    },
  });
}
