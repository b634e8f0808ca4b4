// Task events for containerd, forwarded over its ttRPC socket (TTRPC_ADDRESS)
// with containerd.services.events.ttrpc.v1.Events/Forward, one at a time in
// the order they were published: containerd expects TaskCreate before
// TaskStart before TaskExit before TaskDelete.
import net from 'node:net';
import { Client } from '../ttrpc/client.js';
import { EVENTS_SERVICE, encode, timestamp, toAny } from './proto.js';

/** The topic of each event type, as containerd's runtime publishes them. */
export const TOPICS = {
  TaskCreate: '/tasks/create',
  TaskStart: '/tasks/start',
  TaskExit: '/tasks/exit',
  TaskDelete: '/tasks/delete',
  TaskExecAdded: '/tasks/exec-added',
  TaskExecStarted: '/tasks/exec-started',
  TaskOOM: '/tasks/oom',
  TaskPaused: '/tasks/paused',
  TaskResumed: '/tasks/resumed',
} as const;
export type EventType = keyof typeof TOPICS;

const ATTEMPTS = 3;
const CALL_TIMEOUT_MS = 5000;

export class EventPublisher {
  private client?: Client;
  private queue: Promise<void> = Promise.resolve();

  /** `address`: containerd's ttRPC socket path; `log` hears about events that could not be delivered. */
  constructor(private readonly address: string, private readonly namespace: string, private readonly log: (line: string) => void) {}

  /** Queues `event` behind those published before it; never throws. */
  publish(type: EventType, event: object): void {
    const envelope = {
      timestamp: timestamp(new Date()),
      namespace: this.namespace,
      topic: TOPICS[type],
      event: toAny(`containerd.events.${type}`, event),
    };
    const payload = encode('containerd.services.events.ttrpc.v1.ForwardRequest', { envelope });
    this.queue = this.queue.then(() => this.forward(type, payload));
  }

  /** Resolves once every event published so far was delivered or given up on. */
  flushed(): Promise<void> {
    return this.queue;
  }

  close(): void {
    this.client?.close();
  }

  private async forward(type: EventType, payload: Uint8Array): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (this.client === undefined || this.client.closed) this.client = new Client(await connect(this.address));
        await this.client.call(EVENTS_SERVICE, 'Forward', payload, {
          timeoutMs: CALL_TIMEOUT_MS,
          metadata: [{ key: 'containerd-namespace-ttrpc', value: this.namespace }],
        });
        return;
      } catch (e) {
        this.client?.close();
        this.client = undefined;
        if (attempt >= ATTEMPTS) {
          this.log(`cannot publish ${type} to containerd at ${this.address}: ${(e as Error).message}`);
          return;
        }
      }
    }
  }
}

function connect(address: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(address.replace(/^unix:\/\//, ''));
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
