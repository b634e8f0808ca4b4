// A ttRPC server: services registered by name, unary requests handled
// concurrently (each connection answers in whatever order handlers finish).
// Used by tests as a fake guest agent and by the containerd shim (issue 8).
import type { Duplex } from 'node:stream';
import { Flags, FrameDecoder, MAX_MESSAGE_BYTES, MessageType, encodeFrame, type Frame, type FrameHeader } from './framing.js';
import { decodeRequest, encodeResponse, type KeyValue, type Request, type Status } from './messages.js';
import { MAX_TIMER_MS } from './client.js';
import { Code, TtrpcError } from './status.js';

export interface CallContext {
  service: string;
  method: string;
  metadata: KeyValue[];
  /** Aborted when the client's timeout_nano runs out or the connection closes. */
  signal: AbortSignal;
}

/** Resolves with the response payload; throw a TtrpcError to answer with its code (anything else is INTERNAL). */
export type Handler = (payload: Buffer, context: CallContext) => Promise<Uint8Array> | Uint8Array;

export class Server {
  private readonly services = new Map<string, Map<string, Handler>>();

  /** Adds a service ("package.Service") with its methods; a name is registered once. */
  register(service: string, methods: Record<string, Handler>): void {
    if (this.services.has(service)) throw new Error(`ttRPC service ${service} is already registered`);
    this.services.set(service, new Map(Object.entries(methods)));
  }

  /** Serves requests arriving on `socket` until it closes. */
  serve(socket: Duplex): ServerConnection {
    return new ServerConnection(socket, this.services);
  }
}

export class ServerConnection {
  private lastStreamId = 0;
  private closed = false;
  private readonly connection = new AbortController();
  private readonly decoder = new FrameDecoder((f) => this.onFrame(f), (h) => this.onOversized(h));

  constructor(private readonly socket: Duplex, private readonly services: ReadonlyMap<string, ReadonlyMap<string, Handler>>) {
    socket.on('data', (chunk: Buffer) => this.decoder.push(chunk));
    socket.on('error', () => this.close());
    socket.on('end', () => this.close());
    socket.on('close', () => this.close());
  }

  /** Closes the connection; running handlers see their signal aborted and their answers are dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.connection.abort(new TtrpcError(Code.UNAVAILABLE, 'ttRPC connection closed'));
  }

  private onFrame(frame: Frame): void {
    // Unknown types are ignored for compatibility, as containerd does; data frames only follow streaming requests.
    if (frame.type !== MessageType.REQUEST) return;
    const id = frame.streamId;
    if (id % 2 !== 1 || id <= this.lastStreamId) {
      this.respondError(id, Code.INVALID_ARGUMENT, `stream id ${id}: client streams must be odd and increasing (last was ${this.lastStreamId})`);
      return;
    }
    this.lastStreamId = id;
    if (frame.flags & (Flags.REMOTE_OPEN | Flags.REMOTE_CLOSED)) {
      this.respondError(id, Code.UNIMPLEMENTED, 'streaming requests are not supported; this server handles unary calls');
      return;
    }
    let request: Request;
    try {
      request = decodeRequest(frame.data);
    } catch (e) {
      this.respondError(id, Code.INVALID_ARGUMENT, `malformed ttRPC request: ${(e as Error).message}`);
      return;
    }
    void this.handle(id, request);
  }

  private onOversized(header: FrameHeader): void {
    this.respondError(header.streamId, Code.RESOURCE_EXHAUSTED, `message of ${header.length} bytes exceeds the ttRPC maximum of ${MAX_MESSAGE_BYTES}`);
  }

  private async handle(id: number, request: Request): Promise<void> {
    const methods = this.services.get(request.service);
    const handler = methods?.get(request.method);
    if (handler === undefined) {
      const what = methods === undefined ? `service ${request.service}` : `method ${request.service}/${request.method}`;
      this.respondError(id, Code.UNIMPLEMENTED, `${what} is not implemented`);
      return;
    }
    const signals = [this.connection.signal];
    const timeoutMs = Math.ceil(request.timeoutNano / 1e6);
    // Longer than a Node timer can wait is as good as no deadline.
    if (timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS) signals.push(AbortSignal.timeout(timeoutMs));
    const context: CallContext = { service: request.service, method: request.method, metadata: request.metadata, signal: AbortSignal.any(signals) };
    const payload = Buffer.from(request.payload.buffer, request.payload.byteOffset, request.payload.byteLength);
    let result: Uint8Array;
    try {
      result = await handler(payload, context);
    } catch (e) {
      if (e instanceof TtrpcError) this.respondError(id, e.code, e.statusMessage);
      else this.respondError(id, Code.INTERNAL, e instanceof Error ? e.message : String(e));
      return;
    }
    this.send(id, { code: Code.OK, message: '', details: [] }, result);
  }

  private respondError(id: number, code: number, message: string): void {
    this.send(id, { code, message, details: [] }, new Uint8Array());
  }

  private send(id: number, status: Status, payload: Uint8Array): void {
    if (this.closed) return;
    let frame: Buffer;
    try {
      frame = encodeFrame(id, MessageType.RESPONSE, 0, encodeResponse({ status, payload }));
    } catch (e) {
      // An answer over 4 MiB (RESOURCE_EXHAUSTED), or a handler that resolved with something other than bytes.
      const status = e instanceof TtrpcError ? { code: e.code, message: e.statusMessage, details: [] }
        : { code: Code.INTERNAL, message: `cannot encode the response: ${(e as Error).message}`, details: [] };
      frame = encodeFrame(id, MessageType.RESPONSE, 0, encodeResponse({ status, payload: new Uint8Array() }));
    }
    this.socket.write(frame);
  }
}
