// The sandboxes of this host as other processes see them: each running
// `hako run` keeps <state dir>/<id>/sandbox.json beside the sandbox's vsock
// socket, so that `hako ps`, `exec`, `kill` and `rm` can find it, tell whether
// it still runs, and reach its guest agent. Sandbox.destroy() removes the
// directory, record included; one left behind means its process died.
import fs from 'node:fs';
import path from 'node:path';
import { AGENT_PORT, AgentClient } from '../agent/client.js';
import { HakoError } from '../errors.js';
import type { UserDb } from '../image/users.js';
import { connectVsock } from '../vsock/client.js';
import { Container } from './container.js';

export const RECORD_FILE = 'sandbox.json';
export const SOCKET_FILE = 'vsock.sock';

export interface SandboxRecord {
  /** The sandbox's id, also the name of its directory. */
  id: string;
  /** The process running the VM (the `hako run` that made it). */
  pid: number;
  /** That process's start time (/proc/<pid>/stat), which tells it from a later process given the same pid. */
  pidStartTime: string;
  /** The container the sandbox was made for. */
  containerId: string;
  /** Where its root file system came from, for people. */
  image: string;
  command: string[];
  /** The container's environment beyond PATH, which `hako exec` gives its processes too. */
  env: Record<string, string>;
  /** The root file system's /etc/passwd and /etc/group, so `hako exec --user NAME` resolves names as `hako run` did. */
  users?: UserDb;
  /** ISO 8601. */
  created: string;
}

export interface SandboxEntry {
  id: string;
  dir: string;
  /** Missing while the sandbox is being made, or when something other than `hako run` made it. */
  record?: SandboxRecord;
  /** Whether the VM's process is alive (false when unknown: no record). */
  running: boolean;
}

/** The start time of process `pid` in clock ticks since boot, or undefined when there is no such process. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces; starttime is field 22.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** The record of the calling process's sandbox in `dir`. */
export function newRecord(dir: string, fields: Omit<SandboxRecord, 'id' | 'pid' | 'pidStartTime' | 'created'>): SandboxRecord {
  return {
    id: path.basename(dir),
    pid: process.pid,
    pidStartTime: processStartTime(process.pid) ?? '',
    created: new Date().toISOString(),
    ...fields,
  };
}

/** Writes `record` into its sandbox directory `dir`, atomically (readers see all of it or none). */
export function writeRecord(dir: string, record: SandboxRecord): void {
  const file = path.join(dir, RECORD_FILE);
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Reads and checks the record in `dir`; undefined when there is none. */
export function readRecord(dir: string): SandboxRecord | undefined {
  const file = path.join(dir, RECORD_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let r: Partial<Record<keyof SandboxRecord, unknown>>;
  try {
    r = JSON.parse(text) as typeof r;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const ok = typeof r === 'object' && r !== null && r.id === path.basename(dir)
    && Number.isInteger(r.pid) && (r.pid as number) > 0 && typeof r.pidStartTime === 'string'
    && typeof r.containerId === 'string' && typeof r.image === 'string' && isStringArray(r.command)
    && typeof r.env === 'object' && r.env !== null && Object.values(r.env).every((v) => typeof v === 'string')
    && typeof r.created === 'string'
    && (r.users === undefined || (typeof r.users === 'object' && r.users !== null
      && typeof (r.users as UserDb).passwd === 'string' && typeof (r.users as UserDb).group === 'string'));
  if (!ok) throw new Error(`${file}: not a sandbox record (expected the fields of SandboxRecord, id ${path.basename(dir)})`);
  return r as SandboxRecord;
}

/** Whether the process that runs the sandbox of `record` is still alive. */
export function isRunning(record: SandboxRecord): boolean {
  return processStartTime(record.pid) === record.pidStartTime;
}

function entry(stateDir: string, id: string): SandboxEntry {
  const dir = path.join(stateDir, id);
  const record = readRecord(dir);
  return { id, dir, ...(record ? { record } : {}), running: record ? isRunning(record) : false };
}

/** Every sandbox directory in `stateDir`, oldest first (none when it does not exist). */
export function listSandboxes(stateDir: string): SandboxEntry[] {
  let names: fs.Dirent[];
  try {
    names = fs.readdirSync(stateDir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const entries = names.filter((d) => d.isDirectory()).map((d) => entry(stateDir, d.name));
  const created = (e: SandboxEntry) => e.record?.created ?? '';
  return entries.sort((a, b) => created(a).localeCompare(created(b)) || a.id.localeCompare(b.id));
}

/** The sandbox whose id is `id` or starts with it (unambiguously). */
export function findSandbox(stateDir: string, id: string): SandboxEntry {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) {
    throw new HakoError('INVALID_ARGUMENT', `sandbox id must be letters, digits, '_', '.' or '-', got ${JSON.stringify(id)}`);
  }
  const ids = listSandboxes(stateDir).map((e) => e.id);
  const matches = ids.includes(id) ? [id] : ids.filter((i) => i.startsWith(id));
  if (matches.length === 0) throw new HakoError('INVALID_ARGUMENT', `no sandbox ${JSON.stringify(id)} in ${stateDir} (see 'hako ps')`);
  if (matches.length > 1) {
    throw new HakoError('INVALID_ARGUMENT', `sandbox id ${JSON.stringify(id)} is ambiguous: it starts ${matches.join(', ')}`);
  }
  return entry(stateDir, matches[0]!);
}

/** A running sandbox's container, through a new connection to its agent; close the agent when done. */
export async function attachContainer(entry: SandboxEntry): Promise<{ agent: AgentClient; container: Container }> {
  if (!entry.record) throw new Error(`sandbox ${entry.id} has no ${RECORD_FILE}: it is still starting, or was not made by 'hako run'`);
  if (!entry.running) throw new Error(`sandbox ${entry.id} is not running (its process ${entry.record.pid} is gone); remove it with 'hako rm ${entry.id}'`);
  const agent = new AgentClient(await connectVsock(path.join(entry.dir, SOCKET_FILE), AGENT_PORT));
  // pid 0: the init's guest pid is not needed to signal it or exec beside it.
  return { agent, container: new Container(agent, entry.record.containerId, 0, false, () => {}) };
}
