// The host end of a hybrid vsock connection: connect to the VM's Unix socket,
// ask for a guest port, and get a net.Socket carrying the stream once the
// guest accepted (handshake.ts).
import net from 'node:net';
import { HakoError } from '../errors.js';
import { connectLine, MAX_HANDSHAKE_LINE, parseOkLine } from './handshake.js';

export interface ConnectVsockOptions {
  /** Gives up (rejecting with signal.reason) when aborted. */
  signal?: AbortSignal;
  /** Gives up after this long (default 10 s). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Connects to guest port `port` through the VM listening on `udsPath`. Resolves with the socket once the
 * guest accepted, in its initial state (a 'data' listener starts the flow), with any bytes that followed
 * the "OK" line put back for its first reader.
 * Rejects with a HakoError VM_FAILED when the VM refuses (no guest listener on the port, guest not up yet)
 * or does not answer in time, or with the socket's error (e.g. ENOENT: no VM listens on `udsPath`).
 */
export function connectVsock(udsPath: string, port: number, opts: ConnectVsockOptions = {}): Promise<net.Socket> {
  if (!Number.isInteger(port) || port < 0 || port > 0xffffffff) {
    return Promise.reject(new HakoError('INVALID_ARGUMENT', `vsock port must be an integer from 0 to 4294967295, got ${port}`));
  }
  const { signal, timeoutMs = DEFAULT_TIMEOUT_MS } = opts;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(udsPath);
    let received = Buffer.alloc(0);
    const where = `guest port ${port} through ${udsPath}`;
    const done = (error?: unknown) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // Without its 'readable' listener (and never paused) the socket flows again once the caller listens.
      socket.off('connect', onConnect).off('readable', onReadable).off('error', onError).off('close', onClose);
      if (error === undefined) {
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(error);
    };
    const onConnect = () => socket.write(connectLine(port));
    const onReadable = () => {
      for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null;) received = Buffer.concat([received, chunk]);
      const newline = received.indexOf(0x0a);
      if (newline < 0) {
        if (received.length >= MAX_HANDSHAKE_LINE) done(new HakoError('VM_FAILED', `vsock: unexpected answer connecting to ${where}`));
        return;
      }
      const line = received.subarray(0, newline + 1).toString('latin1');
      if (parseOkLine(line) === undefined) {
        done(new HakoError('VM_FAILED', `vsock: unexpected answer ${JSON.stringify(line)} connecting to ${where}`));
        return;
      }
      const rest = received.subarray(newline + 1);
      if (rest.length > 0) socket.unshift(rest);
      done();
    };
    const onError = (e: Error) => done(e);
    const onClose = () => done(new HakoError('VM_FAILED', `vsock: the VM refused the connection to ${where} (nothing listens on it in the guest, or the guest is not up)`));
    const onAbort = () => done(signal!.reason);
    const timer = setTimeout(() => done(new HakoError('VM_FAILED', `vsock: no answer within ${timeoutMs} ms connecting to ${where}`)), timeoutMs);
    socket.on('connect', onConnect).on('readable', onReadable).on('error', onError).on('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
