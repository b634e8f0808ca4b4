// containerd-shim-hako-v2: the containerd runtime v2 shim (io.containerd.hako.v2).
// containerd runs it with flags `-namespace -address -publish-binary -id`
// (and `-bundle`, `-debug`), the bundle as working directory and TTRPC_ADDRESS
// in the environment, followed by an action:
//   start    spawns the shim daemon (or finds the pod's), prints its address
//   delete   cleans up after a shim that died, prints a DeleteResponse
// The daemon itself is this program with the action `serve`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { unmountAndRemove } from '../sandbox/shares.js';
import { Server } from '../ttrpc/server.js';
import { groupId } from './bundle.js';
import { EventPublisher } from './events.js';
import { TASK_SERVICE, encode, timestamp } from './proto.js';
import { unmountAll } from './rootfs.js';
import { parseFlags, type Flags } from './flags.js';
import { canConnect, shimSocketPath } from './socket.js';
import { SANDBOX_DIR_FILE, TaskService } from './task-service.js';

const START_TIMEOUT_MS = 10_000;

/** `start`: prints the address of the shim serving this container's pod, spawning it first if there is none. */
async function start(flags: Flags): Promise<void> {
  const bundle = process.cwd();
  const socket = shimSocketPath(flags.address, flags.namespace, groupId(bundle, flags.id));
  const address = `unix://${socket}`;
  if (!(await canConnect(socket))) {
    fs.rmSync(socket, { force: true });
    fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o711 });
    const args = ['-namespace', flags.namespace, '-address', flags.address, '-publish-binary', flags.publishBinary, '-id', flags.id,
      ...(flags.debug ? ['-debug'] : []), '-socket', socket, 'serve'];
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], {
      cwd: bundle,
      detached: true,
      stdio: 'ignore',
      // Each task's stdin FIFO open waits on libuv's pool for a writer that may never come (host/shim/stdio.ts).
      env: { ...process.env, UV_THREADPOOL_SIZE: '16' },
    });
    let exited: string | undefined;
    child.on('exit', (code, signal) => { exited = `exit ${code ?? signal}`; });
    child.unref();
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await canConnect(socket))) {
      if (exited !== undefined) throw new Error(`the shim daemon for ${flags.id} stopped (${exited}) before listening on ${socket}; see containerd's log`);
      if (Date.now() > deadline) throw new Error(`the shim daemon for ${flags.id} did not listen on ${socket} within ${START_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  fs.writeFileSync(path.join(bundle, 'address'), address);
  process.stdout.write(address);
}

/**
 * `delete`: containerd lost its connection to the shim. If the shim is gone (its VM with it), unmount what it
 * left; a pod's shim that still serves other containers keeps its sandbox. Reports the task killed.
 */
async function deleteAfterLostShim(flags: Flags): Promise<void> {
  const bundle = flags.bundle || process.cwd();
  const addressFile = path.join(bundle, 'address');
  const socket = fs.existsSync(addressFile) ? fs.readFileSync(addressFile, 'utf8').replace(/^unix:\/\//, '') : undefined;
  const errors: string[] = [];
  if (socket === undefined || !(await canConnect(socket))) {
    if (socket !== undefined) fs.rmSync(socket, { force: true });
    try {
      unmountAll(path.join(bundle, 'rootfs'));
    } catch (e) { errors.push((e as Error).message); }
    const sandboxFile = path.join(bundle, SANDBOX_DIR_FILE);
    if (fs.existsSync(sandboxFile)) {
      try {
        unmountAndRemove(fs.readFileSync(sandboxFile, 'utf8'));
      } catch (e) { errors.push((e as Error).message); }
    }
  }
  if (errors.length > 0) process.stderr.write(`${errors.join('\n')}\n`);
  process.stdout.write(encode('containerd.task.v2.DeleteResponse', { pid: 0, exitStatus: 128 + 9, exitedAt: timestamp(new Date()) }));
}

/** The daemon: serves the task service on `flags.socket` until Shutdown after its last task. */
async function serve(flags: Flags): Promise<void> {
  const log = await openLog(process.cwd());
  const events = new EventPublisher(process.env.TTRPC_ADDRESS ?? `${flags.address}.ttrpc`, flags.namespace, log);
  let service: TaskService;
  const listener = net.createServer();
  const shutdown = async () => {
    listener.close();
    fs.rmSync(flags.socket, { force: true });
    try {
      await service.close();
    } catch (e) { log(`destroying the sandbox: ${(e as Error).message}`); }
    await events.flushed();
    events.close();
    process.exit(0);
  };
  const rootfs = process.env.HAKO_SHIM_ROOTFS === 'image' ? 'image' : 'bundle';
  service = new TaskService({ events, log, rootfs, ...(flags.debug || process.env.HAKO_SHIM_DEBUG ? { debug: log } : {}), onShutdown: () => void shutdown() });
  const server = new Server();
  server.register(TASK_SERVICE, service.handlers());
  listener.on('connection', (socket) => server.serve(socket));
  process.on('SIGTERM', () => void shutdown());
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(flags.socket, () => resolve());
  });
  log(`hako shim for ${flags.id} listening on ${flags.socket}`);
}

/** Log lines go to the bundle's `log` FIFO (containerd copies it to its own log) when there is one. */
async function openLog(bundle: string): Promise<(line: string) => void> {
  const fifo = path.join(bundle, 'log');
  let out: net.Socket | undefined;
  try {
    if (fs.statSync(fifo).isFIFO()) out = new net.Socket({ fd: fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK), readable: false });
  } catch { /* no reader, no log */ }
  out?.on('error', () => { out = undefined; });
  return (line) => {
    out?.write(`time="${new Date().toISOString()}" level=info msg=${JSON.stringify(line)} runtime=io.containerd.hako.v2\n`);
  };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  switch (flags.action) {
    case 'start': return start(flags);
    case 'delete': return deleteAfterLostShim(flags);
    case 'serve': return serve(flags);
    default: throw new Error(`unknown action ${JSON.stringify(flags.action)}: expected start or delete (containerd runs this shim)`);
  }
}

main().catch((e: Error) => {
  process.stderr.write(`containerd-shim-hako-v2: ${e.message}\n`);
  process.exit(1);
});
