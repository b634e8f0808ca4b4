// containerd's shim API as Debian's containerd 1.6 defines it (package
// golang-github-containerd-containerd-dev): the task service, the task events
// and the ttRPC events service they are forwarded through, and cgroup v2
// metrics for Stats. protobufjs compiles the .proto files when first needed;
// nothing is copied into this repository.
import path from 'node:path';
import protobuf from 'protobufjs';
import { decodeMessage, encodeMessage } from '../ttrpc/messages.js';

/** Where Debian's Go packages keep their sources (and so the .proto files). */
export const GOCODE = process.env.HAKO_GOCODE_DIR || '/usr/share/gocode/src';
const CONTAINERD = 'github.com/containerd/containerd';
const FILES = [
  `${CONTAINERD}/runtime/v2/task/shim.proto`,
  `${CONTAINERD}/api/events/task.proto`,
  `${CONTAINERD}/api/services/ttrpc/events/v1/events.proto`,
  'github.com/containerd/cgroups/v2/stats/metrics.proto',
];

export const TASK_SERVICE = 'containerd.task.v2.Task';
export const EVENTS_SERVICE = 'containerd.services.events.ttrpc.v1.Events';

/** containerd.v1.types.Status, the state of a task or process. */
export const Status = { UNKNOWN: 0, CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4, PAUSING: 5 } as const;

let root: protobuf.Root | undefined;

/**
 * Imports resolve against GOCODE; google/protobuf's well-known types are
 * protobufjs's own, except descriptor.proto (imported by gogo.proto for its
 * field options), which comes from Debian's gogo package.
 */
function resolvePath(_origin: string, target: string): string {
  if (target === 'google/protobuf/descriptor.proto') return path.join(GOCODE, 'github.com/gogo/protobuf/protobuf', target);
  if (target.startsWith('google/protobuf/')) return target;
  if (target === 'gogoproto/gogo.proto') return path.join(GOCODE, 'github.com/gogo/protobuf', target);
  if (path.isAbsolute(target)) return target;
  return path.join(GOCODE, target);
}

function shimRoot(): protobuf.Root {
  if (root === undefined) {
    const r = new protobuf.Root();
    r.resolvePath = resolvePath;
    try {
      r.loadSync(FILES.map((f) => path.join(GOCODE, f)));
      r.resolveAll();
    } catch (e) {
      throw new Error(`cannot load containerd's shim API from ${GOCODE} (install golang-github-containerd-containerd-dev ` +
        `and golang-github-gogo-protobuf-dev: scripts/install-deps.sh): ${(e as Error).message}`, { cause: e });
    }
    root = r;
  }
  return root;
}

export function lookupType(name: string): protobuf.Type {
  return shimRoot().lookupType(name);
}

/** The request and response types of a task service method. */
export function taskMethod(name: string): { request: protobuf.Type; response: protobuf.Type } {
  const method = shimRoot().lookupService(TASK_SERVICE).methods[name];
  if (method === undefined) throw new Error(`${TASK_SERVICE} has no method ${name}`);
  return { request: method.resolvedRequestType!, response: method.resolvedResponseType! };
}

export function encode(typeName: string, value: object): Uint8Array {
  return encodeMessage(lookupType(typeName), value);
}

export function decode<T>(typeName: string, bytes: Uint8Array): T {
  return decodeMessage<T>(lookupType(typeName), bytes);
}

/**
 * A google.protobuf.Any holding `value` as `typeName`; the type URL is the bare name, as Go's typeurl writes it.
 * (protobufjs's built-in Any keeps the .proto field name type_url.)
 */
export function toAny(typeName: string, value: object): { type_url: string; value: Uint8Array } {
  return { type_url: typeName, value: encode(typeName, value) };
}

/** A google.protobuf.Timestamp for `date`. */
export function timestamp(date: Date): { seconds: number; nanos: number } {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}
