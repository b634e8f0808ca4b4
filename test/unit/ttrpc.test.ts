import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type net from 'node:net';
import { Client } from '../../host/ttrpc/client.js';
import { FrameDecoder, HEADER_BYTES, MAX_MESSAGE_BYTES, MessageType, encodeFrame, type Frame, type FrameHeader } from '../../host/ttrpc/framing.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type Request } from '../../host/ttrpc/messages.js';
import { Server, type CallContext } from '../../host/ttrpc/server.js';
import { Code, TtrpcError } from '../../host/ttrpc/status.js';
import { rejects } from './ttrpc-rejects.js';
import { destroyPairs, socketPair } from './socket-pair.js';

const bytes = (s: string) => Buffer.from(s);

test.after(destroyPairs);

function collect(): { frames: Frame[]; oversized: FrameHeader[]; decoder: FrameDecoder } {
  const frames: Frame[] = [];
  const oversized: FrameHeader[] = [];
  return { frames, oversized, decoder: new FrameDecoder((f) => frames.push(f), (h) => oversized.push(h)) };
}


/** A hand-driven server: the test sees each request frame and answers when and how it likes. */
async function rawServer(): Promise<{ client: Client; server: net.Socket; requests: { frame: Frame; request: Request }[]; next(): Promise<{ frame: Frame; request: Request }>; respond(id: number, payload: string, code?: number): void }> {
  const [c, server] = await socketPair();
  const requests: { frame: Frame; request: Request }[] = [];
  let waiter: (() => void) | undefined;
  const decoder = new FrameDecoder((frame) => {
    requests.push({ frame, request: decodeRequest(frame.data) });
    waiter?.();
  }, () => assert.unreachable('oversized request'));
  server.on('data', (chunk: Buffer) => decoder.push(chunk));
  let taken = 0;
  return {
    client: new Client(c),
    server,
    requests,
    next: async () => {
      while (requests.length <= taken) await new Promise<void>((resolve) => { waiter = resolve; });
      return requests[taken++]!;
    },
    respond: (id, payload, code = Code.OK) => {
      server.write(encodeFrame(id, MessageType.RESPONSE, 0, encodeResponse({ status: { code, message: code ? 'failed' : '', details: [] }, payload: bytes(payload) })));
    },
  };
}

test('a frame is a 10-byte big-endian header and the data', () => {
  const frame = encodeFrame(0x01020304, MessageType.RESPONSE, 5, bytes('abc'));
  assert.equal([...frame], [0, 0, 0, 3, 1, 2, 3, 4, 2, 5, 0x61, 0x62, 0x63]);
  assert.throws(() => encodeFrame(1, MessageType.REQUEST, 0, new Uint8Array(MAX_MESSAGE_BYTES + 1)),
    (e: unknown) => e instanceof TtrpcError && e.code === Code.RESOURCE_EXHAUSTED && /4194305 bytes exceeds the ttRPC maximum of 4194304/.test(e.message));
  assert.is(encodeFrame(1, MessageType.REQUEST, 0, new Uint8Array(MAX_MESSAGE_BYTES)).length, HEADER_BYTES + MAX_MESSAGE_BYTES);
});

test('the decoder reassembles frames fed byte by byte, and many frames from one chunk', () => {
  const stream = Buffer.concat([
    encodeFrame(1, MessageType.REQUEST, 0, bytes('hello')),
    encodeFrame(3, MessageType.REQUEST, 0, new Uint8Array()),
    encodeFrame(5, MessageType.DATA, 1, bytes('x'.repeat(300))),
  ]);
  const expected = [
    { length: 5, streamId: 1, type: 1, flags: 0, data: bytes('hello') },
    { length: 0, streamId: 3, type: 1, flags: 0, data: Buffer.alloc(0) },
    { length: 300, streamId: 5, type: 3, flags: 1, data: bytes('x'.repeat(300)) },
  ];
  const byByte = collect();
  for (const b of stream) byByte.decoder.push(Buffer.from([b]));
  assert.equal(byByte.frames, expected);
  const whole = collect();
  whole.decoder.push(stream);
  assert.equal(whole.frames, expected);
  const odd = collect(); // cut at every 7th byte: splits headers and data alike
  for (let i = 0; i < stream.length; i += 7) odd.decoder.push(stream.subarray(i, i + 7));
  assert.equal(odd.frames, expected);
});

test('an oversized header is reported at once and its data skipped unbuffered, keeping the stream in step', () => {
  const { frames, oversized, decoder } = collect();
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 0);
  header.writeUInt32BE(7, 4);
  header.writeUInt8(MessageType.RESPONSE, 8);
  decoder.push(header);
  assert.equal(oversized, [{ length: MAX_MESSAGE_BYTES + 1, streamId: 7, type: 2, flags: 0 }]);
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < 4; i++) decoder.push(chunk);
  decoder.push(Buffer.concat([Buffer.alloc(1), encodeFrame(9, MessageType.RESPONSE, 0, bytes('next'))]));
  assert.equal(frames.map((f) => [f.streamId, f.data.toString()]), [[9, 'next']]);
  // A 4 GiB claim costs nothing either: the decoder allocates nothing for it.
  header.writeUInt32BE(0xffff_ffff, 0);
  decoder.push(header);
  assert.is(oversized.length, 2);
});

test('Request and Response round-trip with the ttrpc field numbers', () => {
  const request = { service: 's.S', method: 'M', payload: bytes('p'), timeoutNano: 5_000_000_000, metadata: [{ key: 'k', value: 'v' }] };
  const encoded = encodeRequest(request);
  // service = field 1 (tag 0x0a), method = 2 (0x12), payload = 3 (0x1a), timeout_nano = 4 (0x20), metadata = 5 (0x2a)
  assert.equal([...encoded.subarray(0, 5)], [0x0a, 3, 0x73, 0x2e, 0x53]);
  assert.ok(Buffer.from(encoded).includes(Buffer.from([0x20])));
  assert.equal(decodeRequest(encoded), request);
  const response = decodeResponse(encodeResponse({ status: { code: 5, message: 'no such thing', details: [{ typeUrl: 't', value: bytes('d') }] }, payload: bytes('') }));
  assert.equal(response.status, { code: 5, message: 'no such thing', details: [{ typeUrl: 't', value: bytes('d') }] });
  assert.is(decodeResponse(new Uint8Array()).status, null); // an absent status means OK
});

test('concurrent calls use odd increasing stream ids and are answered out of order', async () => {
  const raw = await rawServer();
  const calls = ['a', 'b', 'c'].map((m) => raw.client.call('svc', m, bytes(m)));
  const requests = [await raw.next(), await raw.next(), await raw.next()];
  assert.equal(requests.map((r) => [r.frame.streamId, r.frame.type, r.frame.flags, r.request.method, Buffer.from(r.request.payload).toString()]),
    [[1, 1, 0, 'a', 'a'], [3, 1, 0, 'b', 'b'], [5, 1, 0, 'c', 'c']]);
  raw.respond(5, 'C');
  raw.respond(1, 'A');
  raw.respond(3, 'B', Code.NOT_FOUND);
  assert.is((await calls[0]!).toString(), 'A');
  await rejects(calls[1]!, Code.NOT_FOUND, /^failed \(NOT_FOUND\)$/);
  assert.is((await calls[2]!).toString(), 'C');
  raw.client.close();
});

test('a bad or oversized response fails only its own call', async () => {
  const raw = await rawServer();
  const garbage = raw.client.call('svc', 'm', bytes(''));
  const huge = raw.client.call('svc', 'm', bytes(''));
  const fine = raw.client.call('svc', 'm', bytes(''));
  await raw.next(); await raw.next(); await raw.next();
  raw.server.write(encodeFrame(1, MessageType.RESPONSE, 0, Buffer.from([0x0a, 0xff]))); // a status claiming 255 bytes
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(MAX_MESSAGE_BYTES + 10, 0);
  header.writeUInt32BE(3, 4);
  header.writeUInt8(MessageType.RESPONSE, 8);
  raw.server.write(Buffer.concat([header, Buffer.alloc(MAX_MESSAGE_BYTES + 10)]));
  raw.server.write(encodeFrame(99, MessageType.RESPONSE, 0, encodeResponse({ payload: bytes('stray') }))); // never asked: ignored
  raw.respond(5, 'ok');
  await rejects(garbage, Code.INTERNAL, /malformed ttRPC response on stream 1/);
  await rejects(huge, Code.RESOURCE_EXHAUSTED, /4194314 bytes exceeds the ttRPC maximum/);
  assert.is((await fine).toString(), 'ok');
  raw.client.close();
});

test('an aborted call rejects with CANCELLED at once; its late answer is dropped', async () => {
  const raw = await rawServer();
  const controller = new AbortController();
  const call = raw.client.call('svc', 'slow', bytes(''), { signal: controller.signal });
  await raw.next();
  controller.abort(new Error('user gave up'));
  const e = await rejects(call, Code.CANCELLED, /call cancelled/);
  assert.match(String((e.cause as Error).message), /user gave up/);
  raw.respond(1, 'late');
  const after = raw.client.call('svc', 'next', bytes(''));
  assert.is((await raw.next()).frame.streamId, 3);
  raw.respond(3, 'fresh');
  assert.is((await after).toString(), 'fresh');
  await rejects(raw.client.call('svc', 'never', bytes(''), { signal: AbortSignal.abort() }), Code.CANCELLED, /cancelled/);
  assert.is(raw.requests.length, 2); // a call aborted before it starts is not sent
  raw.client.close();
});

test('a timeout rejects with DEADLINE_EXCEEDED and is sent as timeout_nano', async () => {
  const raw = await rawServer();
  const started = Date.now();
  const call = raw.client.call('svc', 'slow', bytes(''), { timeoutMs: 50 });
  assert.is((await raw.next()).request.timeoutNano, 50_000_000);
  await rejects(call, Code.DEADLINE_EXCEEDED, /svc\/slow: no response within 50 ms/);
  assert.ok(Date.now() - started >= 45);
  await rejects(raw.client.call('svc', 'm', bytes(''), { timeoutMs: -1 }), Code.INVALID_ARGUMENT, /timeoutMs -1: expected milliseconds in \(0, 2147483647\]/);
  await rejects(raw.client.call('svc', 'm', bytes(''), { timeoutMs: 2 ** 31 }), Code.INVALID_ARGUMENT, /timeoutMs 2147483648/);
  raw.client.close();
});

test('losing the connection rejects every pending call and later ones with UNAVAILABLE', async () => {
  const raw = await rawServer();
  const calls = [raw.client.call('svc', 'a', bytes('')), raw.client.call('svc', 'b', bytes(''))];
  await raw.next(); await raw.next();
  const closed = new Promise<TtrpcError>((resolve) => raw.client.onClose(resolve));
  raw.server.destroy();
  for (const call of calls) await rejects(call, Code.UNAVAILABLE, /ttRPC connection closed/);
  assert.is((await closed).code, Code.UNAVAILABLE);
  assert.ok(raw.client.closed);
  await rejects(raw.client.call('svc', 'c', bytes('')), Code.UNAVAILABLE, /connection closed/);
});

async function served(setup: (server: Server) => void): Promise<Client> {
  const [c, s] = await socketPair();
  const server = new Server();
  setup(server);
  server.serve(s);
  return new Client(c);
}

test('the server routes by service and method, concurrently, and answers UNIMPLEMENTED for the rest', async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => { release = resolve; });
  const seen: CallContext[] = [];
  const client = await served((server) => {
    server.register('test.Echo', {
      Echo: (payload, context) => { seen.push(context); return payload; },
      Slow: async (payload) => { await gate; return Buffer.concat([payload, bytes('!')]); },
      NotFound: () => { throw new TtrpcError(Code.NOT_FOUND, 'no item "x"'); },
      Broken: () => { throw new Error('handler bug'); },
      NotBytes: () => 42 as unknown as Uint8Array,
      Huge: () => new Uint8Array(MAX_MESSAGE_BYTES),
    });
    assert.throws(() => server.register('test.Echo', {}), /test\.Echo is already registered/);
  });
  const slow = client.call('test.Echo', 'Slow', bytes('slow'));
  const echo = await client.call('test.Echo', 'Echo', bytes('hi'), { metadata: [{ key: 'k', value: 'v' }] });
  assert.is(echo.toString(), 'hi'); // answered while Slow still runs
  assert.equal(seen[0]!.metadata, [{ key: 'k', value: 'v' }]);
  assert.is(seen[0]!.method, 'Echo');
  release();
  assert.is((await slow).toString(), 'slow!');
  await rejects(client.call('test.Nope', 'Echo', bytes('')), Code.UNIMPLEMENTED, /service test\.Nope is not implemented/);
  await rejects(client.call('test.Echo', 'Nope', bytes('')), Code.UNIMPLEMENTED, /method test\.Echo\/Nope is not implemented/);
  await rejects(client.call('test.Echo', 'NotFound', bytes('')), Code.NOT_FOUND, /no item "x"/);
  await rejects(client.call('test.Echo', 'Broken', bytes('')), Code.INTERNAL, /handler bug/);
  await rejects(client.call('test.Echo', 'NotBytes', bytes('')), Code.INTERNAL, /cannot encode the response: Response: payload: buffer expected/);
  await rejects(client.call('test.Echo', 'Huge', bytes('')), Code.RESOURCE_EXHAUSTED, /exceeds the ttRPC maximum/);
  client.close();
});

test("a handler's signal aborts on the client's timeout and on connection loss", async () => {
  const aborted: string[] = [];
  const client = await served((server) => server.register('test.S', {
    Wait: (_payload, context) => new Promise((_resolve, reject) => {
      context.signal.addEventListener('abort', () => {
        aborted.push(context.signal.reason instanceof TtrpcError ? 'closed' : 'timeout');
        reject(context.signal.reason);
      });
    }),
  }));
  await rejects(client.call('test.S', 'Wait', bytes(''), { timeoutMs: 30 }), Code.DEADLINE_EXCEEDED, /no response/);
  while (aborted.length < 1) await new Promise((resolve) => setTimeout(resolve, 5));
  const pending = client.call('test.S', 'Wait', bytes(''));
  await new Promise((resolve) => setTimeout(resolve, 20));
  client.close();
  await rejects(pending, Code.UNAVAILABLE, /closed/);
  while (aborted.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(aborted, ['timeout', 'closed']);
});

test('the server rejects even or reused stream ids, streaming requests and oversized ones, and keeps serving', async () => {
  const [c, s] = await socketPair();
  const server = new Server();
  server.register('test.S', { Echo: (payload) => payload });
  server.serve(s);
  const answers: Frame[] = [];
  const decoder = new FrameDecoder((f) => answers.push(f), () => assert.unreachable('oversized answer'));
  c.on('data', (chunk: Buffer) => decoder.push(chunk));
  const request = encodeRequest({ service: 'test.S', method: 'Echo', payload: bytes('e'), timeoutNano: 0, metadata: [] });
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 0);
  header.writeUInt32BE(9, 4);
  header.writeUInt8(MessageType.REQUEST, 8);
  c.write(Buffer.concat([
    encodeFrame(2, MessageType.REQUEST, 0, request),
    encodeFrame(3, MessageType.REQUEST, 0, request),
    encodeFrame(3, MessageType.REQUEST, 0, request),
    encodeFrame(5, MessageType.REQUEST, 2, request),
    encodeFrame(7, MessageType.REQUEST, 0, bytes('\xff\xff')),
    header, Buffer.alloc(MAX_MESSAGE_BYTES + 1),
    encodeFrame(11, MessageType.REQUEST, 0, request),
  ]));
  while (answers.length < 7) await new Promise((resolve) => setTimeout(resolve, 5));
  const summary = answers.map((f) => {
    const r = decodeResponse(f.data);
    return [f.streamId, r.status?.code ?? 0, Buffer.from(r.payload).toString()] as const;
  }).sort((a, b) => a[0] - b[0] || a[1] - b[1]); // handlers answer when they finish, errors at once
  assert.equal(summary, [
    [2, Code.INVALID_ARGUMENT, ''], [3, Code.OK, 'e'], [3, Code.INVALID_ARGUMENT, ''], [5, Code.UNIMPLEMENTED, ''],
    [7, Code.INVALID_ARGUMENT, ''], [9, Code.RESOURCE_EXHAUSTED, ''], [11, Code.OK, 'e'],
  ]);
  c.destroy();
});

test.run();
