// Two connected Unix sockets in this process, for protocol tests without a VM.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const open = new Set<net.Socket>();

/** For test.after: a failed assertion must not leave a socket keeping the process alive. */
export function destroyPairs(): void {
  for (const socket of open) socket.destroy();
  open.clear();
}

export async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-pair-'));
  const file = path.join(dir, 'sock');
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(file, resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect(file);
    await new Promise<void>((resolve, reject) => client.once('error', reject).once('connect', resolve));
    const pair: [net.Socket, net.Socket] = [client, await accepted];
    for (const socket of pair) open.add(socket);
    return pair;
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
