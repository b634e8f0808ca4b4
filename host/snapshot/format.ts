// The on-disk snapshot: a directory holding
//   manifest.json  format version, VM shape, input hashes, host facts, memory file facts
//   state.json     KVM vCPU and VM state, device model state (blobs in base64)
//   memory.bin     guest RAM, mapped copy-on-write by every restore: low RAM (the Wasm window,
//                  layout.ts lowRamBytes), then the RAM above the MMIO gap if any; zero pages are holes
// Written into a temporary directory and renamed, so a snapshot is whole or absent.
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import type { CpuTemplateName } from '../cpu/template.js';
import type { VirtioDeviceConfig } from '../vmm/virtio.js';
import { FS_CACHE_MODES, type FsCacheMode } from '../vmm/config.js';
import type { VcpuState, VmState } from './machine_state.js';

/** 2: virtio devices (vm.devices, their state in the device blob). */
export const SNAPSHOT_FORMAT_VERSION = 2;
export const MEMORY_FILE = 'memory.bin';
const MANIFEST_FILE = 'manifest.json';
const STATE_FILE = 'state.json';

export interface SnapshotManifest {
  formatVersion: number;
  createdAt: string;
  vm: {
    vcpus: number;
    memoryMiB: number;
    cpuTemplate: CpuTemplateName;
    cmdline: string;
    /** The virtio devices, in guest order; a restore attaches the same kinds at the same places. */
    devices: VirtioDeviceConfig[];
  };
  /** sha256 of the kernel and initrd the guest booted from. */
  inputs: { kernel: string; initrd?: string };
  /** Facts a restoring host must share: the guest's clock and CPU features depend on them. */
  host: { pvm: boolean; tscKhz: number };
  memory: { bytes: number; sha256: string; mtimeMs: number };
}

/** Guest RAM as a snapshot stores it: low RAM, then `highBytes` of RAM above the MMIO gap. */
export interface SnapshotMemory {
  low: Uint8Array;
  highBytes: number;
  /** Writes the high RAM into `fd` at `fileOffset`, where the file reads as zeros (zero pages may be skipped). */
  writeHigh(fd: number, fileOffset: number): void;
}

export interface SnapshotState {
  vcpus: VcpuState[];
  vm: VmState;
  devices: Uint8Array;
}

const bad = (dir: string, what: string): never => {
  throw new HakoError('BAD_SNAPSHOT', `snapshot ${dir}: ${what}`);
};

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Large enough for fast I/O and hashing, small enough to cost nothing next to guest RAM. */
const CHUNK_BYTES = 4 * 1024 * 1024;

/** Feeds [from, to) of the open file `fd` to `hash` in chunks: memory files may be larger than any Buffer. */
function hashFileRange(hash: Hash, fd: number, from: number, to: number): void {
  const chunk = Buffer.alloc(CHUNK_BYTES);
  for (let at = from; at < to;) {
    const n = fs.readSync(fd, chunk, 0, Math.min(CHUNK_BYTES, to - at), at);
    if (n === 0) throw new Error(`unexpected end of file at byte ${at} of ${to}`);
    hash.update(chunk.subarray(0, n));
    at += n;
  }
}

/** Writes `low` to the new, zero-filled file `fd` from offset 0, leaving zero chunks as holes, and hashes all of it. */
function writeSparse(hash: Hash, fd: number, low: Uint8Array): void {
  const zeros = Buffer.alloc(CHUNK_BYTES);
  for (let at = 0; at < low.byteLength; at += CHUNK_BYTES) {
    const chunk = Buffer.from(low.buffer, low.byteOffset + at, Math.min(CHUNK_BYTES, low.byteLength - at));
    hash.update(chunk);
    if (!chunk.equals(zeros.subarray(0, chunk.byteLength))) fs.writeSync(fd, chunk, 0, chunk.byteLength, at);
  }
}

// JSON with the two types it lacks: bigint (registers) and Buffer (KVM structs).
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('base64') };
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer') {
    return { $bytes: Buffer.from((value as { data: number[] }).data).toString('base64') };
  }
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object') {
    const v = value as { $bigint?: string; $bytes?: string };
    if (typeof v.$bigint === 'string') return BigInt(v.$bigint);
    if (typeof v.$bytes === 'string') return Buffer.from(v.$bytes, 'base64');
  }
  return value;
}

/** Writes a snapshot of `memory` (guest RAM) and `state` to `dir`, which must not exist yet. */
export function writeSnapshot(dir: string, manifest: Omit<SnapshotManifest, 'formatVersion' | 'createdAt' | 'memory'>,
  memory: SnapshotMemory, state: SnapshotState): SnapshotManifest {
  if (fs.existsSync(dir)) throw new HakoError('INVALID_ARGUMENT', `snapshot directory ${dir} already exists`);
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const memoryPath = path.join(tmp, MEMORY_FILE);
    const bytes = memory.low.byteLength + memory.highBytes;
    const hash = createHash('sha256');
    const fd = fs.openSync(memoryPath, 'wx+');
    try {
      // A sparse file of the full size: every part skipped while writing reads as zeros.
      fs.ftruncateSync(fd, bytes);
      writeSparse(hash, fd, memory.low);
      if (memory.highBytes > 0) {
        memory.writeHigh(fd, memory.low.byteLength);
        hashFileRange(hash, fd, memory.low.byteLength, bytes);
      }
    } finally {
      fs.closeSync(fd);
    }
    const full: SnapshotManifest = {
      formatVersion: SNAPSHOT_FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      ...manifest,
      memory: { bytes, sha256: hash.digest('hex'), mtimeMs: fs.statSync(memoryPath).mtimeMs },
    };
    fs.writeFileSync(path.join(tmp, STATE_FILE), JSON.stringify(state, replacer));
    fs.writeFileSync(path.join(tmp, MANIFEST_FILE), JSON.stringify(full, null, 2) + '\n');
    fs.renameSync(tmp, dir);
    return full;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

function readJson(dir: string, file: string, parse?: (k: string, v: unknown) => unknown): unknown {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, file), 'utf8');
  } catch (e) {
    return bad(dir, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text, parse);
  } catch {
    return bad(dir, `${file} is not valid JSON`);
  }
}

/**
 * Reads and checks a snapshot's manifest and its memory file. The memory file
 * must have the recorded size; when its modification time differs from the
 * recorded one (copied, or changed) its contents are hashed and compared too,
 * so an untouched snapshot restores without reading all of guest RAM.
 */
export function readManifest(dir: string): SnapshotManifest {
  const m = readJson(dir, MANIFEST_FILE) as Partial<SnapshotManifest>;
  if (m.formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    bad(dir, `format version ${JSON.stringify(m.formatVersion)} is not the one this hako reads (${SNAPSHOT_FORMAT_VERSION}); make the snapshot again`);
  }
  if (!m.vm || !m.inputs || !m.host || !m.memory) bad(dir, 'manifest.json lacks vm, inputs, host or memory');
  const manifest = m as SnapshotManifest;
  if (!Array.isArray(manifest.vm.devices) || !manifest.vm.devices.every(isDeviceConfig)) bad(dir, 'manifest.json has no valid vm.devices list');
  const memoryPath = path.join(dir, MEMORY_FILE);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(memoryPath);
  } catch {
    return bad(dir, `${MEMORY_FILE} is missing`);
  }
  if (stat.size !== manifest.memory.bytes) {
    bad(dir, `${MEMORY_FILE} is ${stat.size} bytes, the manifest says ${manifest.memory.bytes} (truncated or replaced)`);
  }
  if (stat.mtimeMs !== manifest.memory.mtimeMs && fileSha256(memoryPath, stat.size) !== manifest.memory.sha256) {
    bad(dir, `${MEMORY_FILE} does not match the sha256 in the manifest (changed after the snapshot was taken)`);
  }
  return manifest;
}

function fileSha256(file: string, bytes: number): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    hashFileRange(hash, fd, 0, bytes);
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function isDeviceConfig(d: unknown): d is VirtioDeviceConfig {
  const c = d as Partial<{ kind: string; path: unknown; readOnly: unknown; cid: unknown; socketPath: unknown; tag: unknown; cache: unknown }>;
  return c?.kind === 'rng' || (c?.kind === 'block' && typeof c.path === 'string' && typeof c.readOnly === 'boolean')
    || (c?.kind === 'vsock' && Number.isInteger(c.cid) && (c.socketPath === undefined || typeof c.socketPath === 'string'))
    || (c?.kind === 'fs' && typeof c.tag === 'string' && typeof c.readOnly === 'boolean'
      && FS_CACHE_MODES.includes(c.cache as FsCacheMode) && (c.path === undefined || typeof c.path === 'string'));
}

export function readState(dir: string): SnapshotState {
  const s = readJson(dir, STATE_FILE, reviver) as Partial<SnapshotState>;
  if (!Array.isArray(s.vcpus) || !s.vm || !(s.devices instanceof Uint8Array)) bad(dir, `${STATE_FILE} lacks vcpus, vm or devices`);
  return s as SnapshotState;
}

export function memoryFile(dir: string): string {
  return path.join(dir, MEMORY_FILE);
}
