// The VM template cache: one snapshot directory per template, named by a key
// that covers everything the snapshot depends on, in
//   <templates.cache_dir>/<key>/
// by default the templates directory in the cache root guest/build.sh uses,
// ${HAKO_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/hako}. Entries appear by rename, so a
// directory named by a key is a whole snapshot; `<key>.tmp-<pid>` ones are
// in-progress or abandoned creations, and `<key>.lock` holds the pid of the
// one process creating that template (create.ts).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { templatesDir } from '../config/settings.js';
import type { CpuTemplateName } from '../cpu/template.js';
import { HakoError } from '../errors.js';
import { readManifest, SNAPSHOT_FORMAT_VERSION, type SnapshotManifest } from '../snapshot/format.js';

/** What a template is made of; every field goes into its key. */
export interface TemplateInputs {
  /** sha256 of the kernel and initrd files. */
  kernelSha256: string;
  initrdSha256: string;
  /** The command line the template boots with (hako.template=1 included). */
  cmdline: string;
  vcpus: number;
  memoryMiB: number;
  cpuTemplate: CpuTemplateName;
  /** The kinds of the VM's virtio devices, in guest order. */
  devices: string[];
}

const KEY = /^[0-9a-f]{16}$/;

/** Where templates are kept: the configuration's (by default the one `env` names) templates.cache_dir, or $HAKO_CACHE_DIR/templates. */
export function templateRoot(env: NodeJS.ProcessEnv = process.env, config: LoadedConfig = loadConfig({ env })): string {
  return templatesDir(config, env);
}

/** 16 hex digits of a sha256 over the inputs and the snapshot format version. */
export function templateKey(inputs: TemplateInputs, formatVersion = SNAPSHOT_FORMAT_VERSION): string {
  const fields = [
    `format ${formatVersion}`, `kernel ${inputs.kernelSha256}`, `initrd ${inputs.initrdSha256}`,
    `cmdline ${inputs.cmdline}`, `vcpus ${inputs.vcpus}`, `memory ${inputs.memoryMiB}`, `cpu ${inputs.cpuTemplate}`,
    `devices ${inputs.devices.join(',')}`,
  ];
  return createHash('sha256').update(fields.join('\n')).digest('hex').slice(0, 16);
}

export function templateDir(root: string, key: string): string {
  return path.join(root, key);
}

export interface TemplateEntry {
  key: string;
  dir: string;
  /** Undefined when the snapshot cannot be read (damaged, or another format version). */
  manifest?: SnapshotManifest;
  problem?: string;
  /** Bytes on disk. */
  bytes: number;
  createdMs: number;
}

function diskBytes(dir: string): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) {
    const st = fs.statSync(path.join(dir, name));
    total += st.isDirectory() ? diskBytes(path.join(dir, name)) : st.blocks * 512;
  }
  return total;
}

/** Every template in `root`, oldest first; a missing root holds none. */
export function listTemplates(root: string): TemplateEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const entries = names.filter((n) => KEY.test(n)).map((key): TemplateEntry => {
    const dir = templateDir(root, key);
    const base = { key, dir, bytes: diskBytes(dir), createdMs: fs.statSync(dir).mtimeMs };
    try {
      const manifest = readManifest(dir);
      return { ...base, manifest, createdMs: Date.parse(manifest.createdAt) || base.createdMs };
    } catch (e) {
      return { ...base, problem: (e as Error).message };
    }
  });
  return entries.sort((a, b) => a.createdMs - b.createdMs);
}

/** Removes template `key`; throws INVALID_ARGUMENT when there is none. */
export function removeTemplate(root: string, key: string): void {
  if (!KEY.test(key)) throw new HakoError('INVALID_ARGUMENT', `template key must be 16 hex digits (see 'hako template ls'), got ${JSON.stringify(key)}`);
  const dir = templateDir(root, key);
  if (!fs.existsSync(dir)) throw new HakoError('INVALID_ARGUMENT', `no template ${key} in ${root}`);
  // Rename first, so a concurrent restore sees the template whole or absent.
  const doomed = `${dir}.tmp-rm-${process.pid}`;
  fs.renameSync(dir, doomed);
  fs.rmSync(doomed, { recursive: true, force: true });
}

/** Removes every template and every leftover of an interrupted creation; returns the keys removed. */
export function removeAllTemplates(root: string): string[] {
  const removed = listTemplates(root).map((t) => t.key);
  for (const key of removed) removeTemplate(root, key);
  if (fs.existsSync(root)) {
    for (const name of fs.readdirSync(root)) {
      if (name.includes('.tmp-')) fs.rmSync(path.join(root, name), { recursive: true, force: true });
    }
  }
  return removed;
}
