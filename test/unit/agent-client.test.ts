import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { AgentClient } from '../../host/agent/client.js';
import { AGENT_SERVICE, agentRpcs } from '../../host/agent/proto.js';
import { stderrStream, stdinStream, stdoutStream } from '../../host/agent/stdio.js';
import { decodeMessage, encodeMessage } from '../../host/ttrpc/messages.js';
import { Server, type Handler } from '../../host/ttrpc/server.js';
import { Code, TtrpcError } from '../../host/ttrpc/status.js';
import { rejects } from './ttrpc-rejects.js';
import { destroyPairs, socketPair } from './socket-pair.js';

test.after(destroyPairs);

type Fake = Record<string, (request: any) => object | Promise<object>>;

/** An AgentClient talking to an in-process fake agent: `fake` maps rpc names to handlers of decoded messages. */
async function agentWith(fake: Fake): Promise<AgentClient> {
  const [c, s] = await socketPair();
  const methods: Record<string, Handler> = {};
  for (const [name, handle] of Object.entries(fake)) {
    const rpc = agentRpcs().get(name)!;
    methods[name] = async (payload) => encodeMessage(rpc.response, await handle(decodeMessage(rpc.request, payload)));
  }
  const server = new Server();
  server.register(AGENT_SERVICE, methods);
  server.serve(s);
  return new AgentClient(c);
}


const lowerFirst = (s: string) => s[0]!.toLowerCase() + s.slice(1);

test('AgentClient has one method per rpc of agent.proto', () => {
  const names = [...agentRpcs().keys()];
  assert.ok(names.length >= 15, names.join());
  for (const name of names) {
    assert.type((AgentClient.prototype as unknown as Record<string, unknown>)[lowerFirst(name)], 'function', `AgentClient.${lowerFirst(name)} for rpc ${name}`);
  }
});

test('requests and responses keep every field: nested messages, bytes, 64-bit counters', async () => {
  const seen: unknown[] = [];
  const agent = await agentWith({
    Version: () => ({ agentVersion: '0.1.0', kernelRelease: '6.1.0', protocol: 1 }),
    CreateContainer: (request) => { seen.push(request); return { pid: 42 }; },
    StatsContainer: () => ({ cpuUsageUsec: 2 ** 40, memoryMax: 0, oomKills: 3 }),
    WaitProcess: (request) => { seen.push(request); return { exitCode: 137, signal: 9 }; },
    ListProcesses: () => ({ pids: [1, 7, 9] }),
  });
  assert.equal(await agent.version(), { agentVersion: '0.1.0', kernelRelease: '6.1.0', protocol: 1 });
  const spec = Buffer.from('{"ociVersion":"1.0.2"}');
  assert.equal(await agent.createContainer({ containerId: 'c1', ociSpec: spec, rootfs: { device: '/dev/vdb', fstype: 'ext4' }, stdio: { tty: true } }), { pid: 42 });
  assert.equal(seen[0], { containerId: 'c1', ociSpec: spec, rootfs: { device: '/dev/vdb', fstype: 'ext4', path: '', overlay: false }, stdio: { tty: true, stdin: false } });
  assert.equal(await agent.statsContainer({ containerId: 'c1' }),
    { cpuUsageUsec: 2 ** 40, cpuUserUsec: 0, cpuSystemUsec: 0, memoryCurrent: 0, memoryMax: 0, pidsCurrent: 0, oomKills: 3 });
  assert.equal(await agent.waitProcess({ containerId: 'c1' }), { exitCode: 137, signal: 9, oomKilled: false });
  assert.equal(seen[1], { containerId: 'c1', execId: '' }); // "" names the init process
  assert.equal(await agent.listProcesses({ containerId: 'c1' }), { pids: [1, 7, 9] });
  agent.close();
});

test("the agent's errors keep their gRPC code and name the rpc; bad requests and responses are typed too", async () => {
  const agent = await agentWith({
    StartContainer: ({ containerId }) => { throw new TtrpcError(Code.NOT_FOUND, `container_id "${containerId}": no such container`); },
  });
  await rejects(agent.startContainer({ containerId: 'nope' }), Code.NOT_FOUND, /^agent StartContainer: container_id "nope": no such container \(NOT_FOUND\)$/);
  await rejects(agent.removeContainer({ containerId: 'c' }), Code.UNIMPLEMENTED, /^agent RemoveContainer: method hako\.agent\.v1\.Agent\/RemoveContainer is not implemented/);
  await rejects(agent.resizeTty({ containerId: 'c', rows: 'many' as unknown as number, cols: 80 }), Code.INVALID_ARGUMENT, /agent ResizeTty: ResizeTtyRequest: rows: integer expected/);
  agent.close();
  await rejects(agent.version(), Code.UNAVAILABLE, /agent Version: ttRPC connection closed/);
});

test('a malformed response from the guest fails its call with INTERNAL', async () => {
  const [c, s] = await socketPair();
  const server = new Server();
  server.register(AGENT_SERVICE, { Version: () => Buffer.from([0x0a, 0x50]) }); // a string field claiming 80 bytes
  server.serve(s);
  const agent = new AgentClient(c);
  await rejects(agent.version(), Code.INTERNAL, /agent Version: malformed VersionResponse/);
  agent.close();
});

/** A fake process output: chunks handed out one per read, then EOF; fails if two reads of a stream overlap. */
function outputRpc(chunks: Buffer[], overlaps: string[], stream: string) {
  let outstanding = false;
  return async (request: { maxBytes: number }) => {
    if (outstanding) overlaps.push(stream);
    outstanding = true;
    await new Promise((resolve) => setTimeout(resolve, 1)); // the agent blocks until output is there
    outstanding = false;
    const chunk = chunks.shift() ?? Buffer.alloc(0);
    assert.ok(chunk.length <= request.maxBytes);
    return { data: chunk };
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

test('stdout and stderr streams deliver the bytes in order, one read outstanding each, and end on EOF', async () => {
  const out = Array.from({ length: 50 }, (_, i) => Buffer.from(`out ${i}\n`));
  const err = Array.from({ length: 20 }, (_, i) => Buffer.from(`err ${i}\n`));
  const expectedOut = Buffer.concat(out);
  const expectedErr = Buffer.concat(err);
  const overlaps: string[] = [];
  const agent = await agentWith({ ReadStdout: outputRpc(out, overlaps, 'stdout'), ReadStderr: outputRpc(err, overlaps, 'stderr') });
  const process = { containerId: 'c1', execId: 'e1' };
  const [stdout, stderr] = await Promise.all([readAll(stdoutStream(agent, process, { maxBytes: 16 })), readAll(stderrStream(agent, process))]);
  assert.is(stdout.toString(), expectedOut.toString());
  assert.is(stderr.toString(), expectedErr.toString());
  assert.equal(overlaps, []);
  assert.throws(() => stdoutStream(agent, process, { maxBytes: 0 }), /maxBytes 0: expected an integer in 1\.\.1048576/);
  agent.close();
});

test('an output stream errors with the failed read', async () => {
  const agent = await agentWith({ ReadStdout: () => { throw new TtrpcError(Code.NOT_FOUND, 'exec_id "x": no such process'); } });
  try {
    await readAll(stdoutStream(agent, { containerId: 'c1', execId: 'x' }));
    assert.unreachable('did not fail');
  } catch (e) {
    assert.instance(e, TtrpcError);
    assert.is((e as TtrpcError).code, Code.NOT_FOUND);
  }
  agent.close();
});

test('stdin writes arrive in order in pieces of at most 1 MiB, then CloseStdin', async () => {
  const events: string[] = [];
  const received: Buffer[] = [];
  const agent = await agentWith({
    WriteStdin: async ({ containerId, execId, data }) => {
      events.push(`write ${containerId}/${execId} ${data.length}`);
      await new Promise((resolve) => setTimeout(resolve, 1));
      received.push(data);
      return { written: data.length };
    },
    CloseStdin: ({ execId }) => { events.push(`close ${execId}`); return {}; },
  });
  const big = Buffer.alloc((1 << 20) + 5, 7);
  const stdin = stdinStream(agent, { containerId: 'c1', execId: 'e1' });
  stdin.write('hello ');
  stdin.write(big);
  stdin.end('bye');
  await new Promise<void>((resolve, reject) => stdin.on('finish', resolve).on('error', reject));
  assert.equal(events, ['write c1/e1 6', `write c1/e1 ${1 << 20}`, 'write c1/e1 5', 'write c1/e1 3', 'close e1']);
  assert.ok(Buffer.concat(received).equals(Buffer.concat([Buffer.from('hello '), big, Buffer.from('bye')])));
  agent.close();
});

test.run();
