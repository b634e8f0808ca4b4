// The shim's task service and event publisher without a VM: the protobuf
// definitions from Debian's containerd package, answers for unknown tasks and
// unimplemented methods, Shutdown, and events forwarded to a fake containerd
// in order with the type URLs containerd decodes.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventPublisher } from '../../host/shim/events.js';
import { EVENTS_SERVICE, TASK_SERVICE, decode, encode, taskMethod } from '../../host/shim/proto.js';
import { TaskService } from '../../host/shim/task-service.js';
import { Client } from '../../host/ttrpc/client.js';
import { Server } from '../../host/ttrpc/server.js';
import { Code, TtrpcError } from '../../host/ttrpc/status.js';
import { destroyPairs, socketPair } from './socket-pair.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-shim-service-'));
test.after(() => {
  destroyPairs();
  fs.rmSync(scratch, { recursive: true, force: true });
});

async function serviceClient(onShutdown = () => {}): Promise<{ client: Client; call(method: string, request: object): Promise<any> }> {
  const events = new EventPublisher(path.join(scratch, 'nobody.sock'), 'test', () => {});
  const service = new TaskService({ events, log: () => {}, onShutdown });
  const server = new Server();
  server.register(TASK_SERVICE, service.handlers());
  const [a, b] = await socketPair();
  server.serve(b);
  const client = new Client(a);
  return {
    client,
    async call(method, request) {
      const { request: req, response } = taskMethod(method);
      const bytes = await client.call(TASK_SERVICE, method, req.encode(req.fromObject(request)).finish());
      return response.toObject(response.decode(bytes), { defaults: true, longs: Number });
    },
  };
}

async function rejects(p: Promise<unknown>, code: number, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, TtrpcError);
    assert.is((e as TtrpcError).code, code, (e as Error).message);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable('the call succeeded');
}

test('every method of containerd.task.v2.Task is served', async () => {
  const s = await serviceClient();
  const methods = ['State', 'Create', 'Start', 'Delete', 'Pids', 'Pause', 'Resume', 'Checkpoint', 'Kill', 'Exec', 'ResizePty', 'CloseIO', 'Update', 'Wait', 'Stats', 'Connect', 'Shutdown'];
  for (const m of methods) assert.ok(taskMethod(m), m);
  assert.equal(await s.call('Connect', { id: 'x' }), { shimPid: process.pid, taskPid: 0, version: 'hako' });
});

test('unknown tasks are NOT_FOUND; Checkpoint is UNIMPLEMENTED with the reason', async () => {
  const s = await serviceClient();
  for (const m of ['State', 'Delete', 'Kill', 'Wait', 'Pause', 'Resume', 'Update']) {
    await rejects(s.call(m, { id: 'nope' }), Code.NOT_FOUND, /task nope not found/);
  }
  await rejects(s.call('Checkpoint', { id: 'x' }), Code.UNIMPLEMENTED, /checkpoint/);
});

test('a malformed request is INVALID_ARGUMENT naming its type', async () => {
  const { client } = await serviceClient();
  await rejects(client.call(TASK_SERVICE, 'State', Buffer.from([0x0a, 0xff])), Code.INVALID_ARGUMENT, /State: malformed StateRequest/);
});

test('Shutdown without tasks answers, then ends the shim', async () => {
  let ended!: () => void;
  const shutdown = new Promise<void>((r) => { ended = r; });
  const s = await serviceClient(() => ended());
  assert.equal(await s.call('Shutdown', { id: 'x' }), {});
  await shutdown;
});

test('DeleteResponse round-trips as the `delete` action prints it', () => {
  const bytes = encode('containerd.task.v2.DeleteResponse', { pid: 7, exitStatus: 137, exitedAt: { seconds: 1700000000, nanos: 5 } });
  assert.equal(decode('containerd.task.v2.DeleteResponse', bytes), { pid: 7, exitStatus: 137, exitedAt: { seconds: 1700000000, nanos: 5 } });
});

test('events reach containerd in order, in envelopes with the namespace, topic and type URL', async () => {
  const socketPath = path.join(scratch, 'containerd.sock.ttrpc');
  const received: { namespace: string; topic: string; event: { type_url: string; value: Uint8Array } }[] = [];
  const server = new Server();
  server.register(EVENTS_SERVICE, {
    Forward: async (payload) => {
      // A slow first answer: the next event must still wait for it.
      await new Promise((r) => setTimeout(r, received.length === 0 ? 50 : 0));
      received.push(decode<{ envelope: (typeof received)[number] }>('containerd.services.events.ttrpc.v1.ForwardRequest', payload).envelope);
      return new Uint8Array();
    },
  });
  const listener = net.createServer((s) => server.serve(s));
  await new Promise<void>((r) => listener.listen(socketPath, r));
  const events = new EventPublisher(socketPath, 'ns1', () => {});
  events.publish('TaskCreate', { containerId: 'c', bundle: '/b', pid: 3 });
  events.publish('TaskStart', { containerId: 'c', pid: 3 });
  events.publish('TaskExit', { containerId: 'c', id: 'c', pid: 3, exitStatus: 137, exitedAt: { seconds: 1, nanos: 0 } });
  events.publish('TaskDelete', { containerId: 'c', pid: 3, exitStatus: 137 });
  await events.flushed();
  events.close();
  listener.close();
  assert.equal(received.map((e) => [e.namespace, e.topic, e.event.type_url]), [
    ['ns1', '/tasks/create', 'containerd.events.TaskCreate'],
    ['ns1', '/tasks/start', 'containerd.events.TaskStart'],
    ['ns1', '/tasks/exit', 'containerd.events.TaskExit'],
    ['ns1', '/tasks/delete', 'containerd.events.TaskDelete'],
  ]);
  assert.is(decode<{ exitStatus: number }>('containerd.events.TaskExit', received[2]!.event.value).exitStatus, 137);
});

test('an unreachable containerd is logged, not thrown', async () => {
  const lines: string[] = [];
  const events = new EventPublisher(path.join(scratch, 'absent.sock'), 'ns', (l) => lines.push(l));
  events.publish('TaskOOM', { containerId: 'c' });
  await events.flushed();
  assert.match(lines.join('\n'), /cannot publish TaskOOM to containerd at .*absent\.sock/);
});

test.run();
