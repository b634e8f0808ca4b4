// The parts of an OCI image configuration (image-spec config.md; docker save
// writes the same JSON) that hako uses: how to run the container, and the
// diff IDs its layers are verified against.
import { HakoError } from '../errors.js';
import { parseDigest, type Digest } from './digest.js';

/** How the image says to run it; any field may be missing. */
export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
}

export interface ParsedConfig {
  config: ImageConfig;
  /** The digest of each layer's uncompressed tar, bottom layer first (rootfs.diff_ids). */
  diffIds: Digest[];
}

/** Parses JSON from an image, naming `what` if it is not a JSON object. */
export function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}

function stringList(value: unknown, what: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((s) => typeof s === 'string')) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: expected an array of strings`);
  }
  return value;
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new HakoError('INVALID_ARGUMENT', `${what}: expected a string`);
  return value;
}

/** Parses an image configuration blob; `what` names it in messages. */
export function parseImageConfig(bytes: Buffer, what: string): ParsedConfig {
  const json = parseJsonObject(bytes, what);
  const run = (json.config ?? {}) as Record<string, unknown>;
  if (typeof run !== 'object' || Array.isArray(run)) throw new HakoError('INVALID_ARGUMENT', `${what}: "config" is not an object`);
  const rootfs = json.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  if (typeof rootfs !== 'object' || rootfs === null || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: expected "rootfs": {"type": "layers", "diff_ids": [...]}`);
  }
  const config: ImageConfig = {
    entrypoint: stringList(run.Entrypoint, `${what}: config.Entrypoint`),
    cmd: stringList(run.Cmd, `${what}: config.Cmd`),
    env: stringList(run.Env, `${what}: config.Env`),
    workingDir: optionalString(run.WorkingDir, `${what}: config.WorkingDir`),
    user: optionalString(run.User, `${what}: config.User`),
  };
  for (const key of Object.keys(config) as (keyof ImageConfig)[]) if (config[key] === undefined) delete config[key];
  return { config, diffIds: rootfs.diff_ids.map((d, i) => parseDigest(d, `${what}: rootfs.diff_ids[${i}]`)) };
}
