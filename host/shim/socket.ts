// Where a shim listens: one socket per pod (group of containers), named by a
// hash of containerd's address, the namespace and the pod, as containerd's
// own shims do, under hako's state directory.
import { createHash } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { defaultStateDir } from '../sandbox/sandbox.js';

export function shimSocketPath(containerdAddress: string, namespace: string, group: string, env: NodeJS.ProcessEnv = process.env): string {
  const hash = createHash('sha256').update(path.join(containerdAddress, namespace, group)).digest('hex');
  return path.join(defaultStateDir(env), 'shim', hash);
}

/** True when something accepts connections on the Unix socket `socketPath`. */
export function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
