// A ttRPC client on one connection: unary calls multiplexed by stream id
// (odd, from 1, increasing: a server rejects reused ids), answered in any order.
// The server may be a hostile guest: whatever it sends settles at most the call
// it names, and bad frames or messages fail only that call.
import type { Duplex } from 'node:stream';
import { FrameDecoder, MAX_MESSAGE_BYTES, MessageType, encodeFrame, type Frame, type FrameHeader } from './framing.js';
import { decodeResponse, encodeRequest, type KeyValue, type Response } from './messages.js';
import { Code, TtrpcError } from './status.js';

const MAX_STREAM_ID = 0xffff_ffff;
/** Node's timers fire at once beyond this (about 24.8 days). */
export const MAX_TIMER_MS = 0x7fff_ffff;

export interface CallOptions {
  /** Fails the call with DEADLINE_EXCEEDED after this long; also sent to the server as timeout_nano. */
  timeoutMs?: number;
  /** Aborting fails the call with CANCELLED; a late response is dropped. */
  signal?: AbortSignal;
  metadata?: KeyValue[];
}

interface PendingCall {
  resolve(payload: Buffer): void;
  reject(error: TtrpcError): void;
}

export class Client {
  private readonly pending = new Map<number, PendingCall>();
  private nextStreamId = 1;
  private closedError: TtrpcError | null = null;
  private readonly decoder = new FrameDecoder((f) => this.onFrame(f), (h) => this.onOversized(h));
  private readonly closeListeners: ((error: TtrpcError) => void)[] = [];

  /** Takes over `socket`: close() or the peer closing it ends every pending call. */
  constructor(private readonly socket: Duplex) {
    socket.on('data', (chunk: Buffer) => this.decoder.push(chunk));
    socket.on('error', (e) => this.shutDown(`connection failed: ${e.message}`, e));
    socket.on('end', () => this.shutDown('connection closed by the server'));
    socket.on('close', () => this.shutDown('connection closed'));
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Called once, with the UNAVAILABLE error pending calls got, when the connection ends. */
  onClose(listener: (error: TtrpcError) => void): void {
    if (this.closedError !== null) listener(this.closedError);
    else this.closeListeners.push(listener);
  }

  /** Sends a request and resolves with the response payload, or rejects with a TtrpcError. */
  call(service: string, method: string, payload: Uint8Array, options: CallOptions = {}): Promise<Buffer> {
    const { timeoutMs, signal, metadata = [] } = options;
    if (this.closedError !== null) return Promise.reject(this.closedError);
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    if (timeoutMs !== undefined && !(timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
      return Promise.reject(new TtrpcError(Code.INVALID_ARGUMENT, `timeoutMs ${timeoutMs}: expected milliseconds in (0, ${MAX_TIMER_MS}]`));
    }
    if (this.nextStreamId > MAX_STREAM_ID) {
      return Promise.reject(new TtrpcError(Code.RESOURCE_EXHAUSTED, 'every ttRPC stream id of this connection is used; open a new connection'));
    }
    let frame: Buffer;
    const streamId = this.nextStreamId;
    try {
      const request = encodeRequest({ service, method, payload, timeoutNano: timeoutMs === undefined ? 0 : Math.round(timeoutMs * 1e6), metadata });
      frame = encodeFrame(streamId, MessageType.REQUEST, 0, request);
    } catch (e) {
      return Promise.reject(e instanceof TtrpcError ? e : new TtrpcError(Code.INVALID_ARGUMENT, `cannot encode the ${service}/${method} request: ${(e as Error).message}`, { cause: e }));
    }
    this.nextStreamId += 2;

    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => settle(() => reject(cancelled(signal!)));
      const settle = (finish: () => void) => {
        this.pending.delete(streamId);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        finish();
      };
      this.pending.set(streamId, {
        resolve: (data) => settle(() => resolve(data)),
        reject: (error) => settle(() => reject(error)),
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => settle(() => reject(new TtrpcError(Code.DEADLINE_EXCEEDED, `${service}/${method}: no response within ${timeoutMs} ms`))), timeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.write(frame);
    });
  }

  /** Closes the connection; pending calls fail with UNAVAILABLE. */
  close(): void {
    this.shutDown('connection closed by the client');
  }

  private onFrame(frame: Frame): void {
    // Data frames belong to streaming calls, which this client never starts.
    if (frame.type !== MessageType.RESPONSE) return;
    const call = this.pending.get(frame.streamId);
    if (call === undefined) return; // cancelled or timed out meanwhile, or a stream id we never used
    let response: Response;
    try {
      response = decodeResponse(frame.data);
    } catch (e) {
      call.reject(new TtrpcError(Code.INTERNAL, `malformed ttRPC response on stream ${frame.streamId}: ${(e as Error).message}`, { cause: e }));
      return;
    }
    const status = response.status;
    if (status && status.code !== Code.OK) call.reject(new TtrpcError(status.code, status.message));
    else call.resolve(Buffer.from(response.payload.buffer, response.payload.byteOffset, response.payload.byteLength));
  }

  private onOversized(header: FrameHeader): void {
    this.pending.get(header.streamId)?.reject(
      new TtrpcError(Code.RESOURCE_EXHAUSTED, `response of ${header.length} bytes exceeds the ttRPC maximum of ${MAX_MESSAGE_BYTES}`));
  }

  private shutDown(why: string, cause?: unknown): void {
    if (this.closedError !== null) return;
    const error = new TtrpcError(Code.UNAVAILABLE, `ttRPC ${why}`, cause === undefined ? undefined : { cause });
    this.closedError = error;
    this.socket.destroy();
    for (const call of [...this.pending.values()]) call.reject(error);
    for (const listener of this.closeListeners.splice(0)) listener(error);
  }
}

function cancelled(signal: AbortSignal): TtrpcError {
  return new TtrpcError(Code.CANCELLED, 'call cancelled', { cause: signal.reason });
}
