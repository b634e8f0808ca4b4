// What the shim reads from an OCI bundle's config.json (and from the OCI
// process of an Exec request): the process to run, its bind mounts and memory
// limit, and the annotations that group containers of one pod into one shim.
// The rest (namespaces, capabilities, device rules) is hako's default spec.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import type { ProcessOptions, Volume } from '../sandbox/oci-spec.js';

/** Annotations naming the pod a container belongs to: containers of one pod share a shim and its VM. */
const GROUP_ANNOTATIONS = ['io.kubernetes.cri.sandbox-id', 'io.containerd.hako.v2.group'];

export interface BundleSpec {
  process: ProcessOptions;
  /** root.path, relative to the bundle unless absolute. */
  rootPath: string;
  rootReadOnly: boolean;
  hostname?: string;
  /** The spec's bind mounts of host directories (`ctr run --mount`), shared into the VM like the rootfs. */
  volumes: Volume[];
  /** Bind mounts that cannot be shared (host files, missing sources): not mounted, for the shim's log. */
  skippedMounts: string[];
  memoryLimitBytes?: number;
  annotations: Record<string, string>;
}

interface OciMount {
  destination?: unknown;
  type?: unknown;
  source?: unknown;
  options?: unknown;
}

/** The spec's bind mounts of host directories as volumes; the guest provides /proc, /dev and the like itself. */
function volumes(mounts: OciMount[]): { volumes: Volume[]; skipped: string[] } {
  const result: Volume[] = [];
  const skipped: string[] = [];
  for (const m of mounts) {
    const options = Array.isArray(m.options) ? m.options.map(String) : [];
    if (m.type !== 'bind' && !options.includes('bind') && !options.includes('rbind')) continue;
    const source = String(m.source ?? '');
    if (!path.isAbsolute(source) || !fs.statSync(source, { throwIfNoEntry: false })?.isDirectory()) {
      skipped.push(`${source} on ${String(m.destination)}: only host directories can be shared`);
      continue;
    }
    result.push({ source, destination: String(m.destination), readOnly: options.includes('ro') });
  }
  return { volumes: result, skipped };
}

interface OciProcess {
  args?: unknown;
  env?: unknown;
  cwd?: unknown;
  user?: { uid?: unknown; gid?: unknown };
}

/** ProcessOptions from an OCI "process" object; `what` names it in errors. */
export function processOptions(p: OciProcess, tty: boolean, what: string): ProcessOptions {
  if (!Array.isArray(p.args) || p.args.length === 0) throw new HakoError('INVALID_ARGUMENT', `${what}: process.args must be a non-empty array`);
  const env: Record<string, string> = {};
  for (const entry of Array.isArray(p.env) ? p.env : []) {
    const s = String(entry);
    const eq = s.indexOf('=');
    if (eq > 0) env[s.slice(0, eq)] = s.slice(eq + 1);
  }
  const uid = Number(p.user?.uid ?? 0);
  const gid = Number(p.user?.gid ?? 0);
  return {
    args: p.args.map(String),
    env,
    cwd: typeof p.cwd === 'string' && p.cwd !== '' ? p.cwd : '/',
    tty,
    user: { uid, gid },
  };
}

/** Reads `<bundle>/config.json`; `tty` comes from the request, which containerd keeps in step with the spec. */
export function readBundle(bundle: string, tty: boolean): BundleSpec {
  const file = path.join(bundle, 'config.json');
  let spec: {
    process?: OciProcess; root?: { path?: unknown; readonly?: unknown }; hostname?: unknown; annotations?: unknown; mounts?: unknown;
    linux?: { resources?: { memory?: { limit?: unknown } } };
  };
  try {
    spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new HakoError('INVALID_ARGUMENT', `cannot read the OCI spec ${file}: ${(e as Error).message}`, { cause: e });
  }
  const annotations = typeof spec.annotations === 'object' && spec.annotations !== null ? spec.annotations as Record<string, string> : {};
  const binds = volumes(Array.isArray(spec.mounts) ? spec.mounts : []);
  const memoryLimit = spec.linux?.resources?.memory?.limit;
  return {
    process: processOptions(spec.process ?? {}, tty, file),
    rootPath: typeof spec.root?.path === 'string' ? spec.root.path : 'rootfs',
    rootReadOnly: spec.root?.readonly === true,
    ...(typeof spec.hostname === 'string' && spec.hostname !== '' ? { hostname: spec.hostname } : {}),
    volumes: binds.volumes,
    skippedMounts: binds.skipped,
    ...(typeof memoryLimit === 'number' && memoryLimit > 0 ? { memoryLimitBytes: memoryLimit } : {}),
    annotations,
  };
}

/** The pod the bundle's container belongs to, or its own id when it is alone. */
export function groupId(bundle: string, id: string): string {
  try {
    const { annotations } = readBundle(bundle, false);
    for (const key of GROUP_ANNOTATIONS) {
      if (typeof annotations[key] === 'string' && annotations[key] !== '') return annotations[key]!;
    }
  } catch { /* no readable spec: the container is on its own */ }
  return id;
}
