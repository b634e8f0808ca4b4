// `hako rm`: removes what stopped sandboxes left in the state directory, or
// with --force stops running ones first.
import { setTimeout as sleep } from 'node:timers/promises';
import { HakoError } from '../errors.js';
import { unmountAndRemove } from '../sandbox/shares.js';
import { attachContainer, findSandbox, isRunning, RECORD_FILE, type SandboxEntry } from '../sandbox/state.js';
import { parse } from './args.js';
import { commandConfig, CONFIG_OPTION, stateDir } from './run-args.js';

export const rmHelp = `Usage: hako rm [--force] ID...

Removes the state of sandboxes whose process is gone ('dead' in 'hako ps').
IDs may be unique prefixes. Prints each ID removed.

Options:
  -f, --force     also stop running sandboxes: their containers get SIGKILL,
                  and their 'hako run' exits 137; also remove sandboxes
                  without a record ('unknown' in 'hako ps')
  --config FILE   configuration file (see 'hako config --help')
  -h, --help      show this help`;

/** How long a sandbox's `hako run` gets to destroy it after its container was killed. */
const STOP_TIMEOUT_MS = 10_000;

async function exited(entry: SandboxEntry, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    if (!isRunning(entry.record!)) return true;
  }
  return !isRunning(entry.record!);
}

/** Kills the container, so that its `hako run` exits and destroys the sandbox; kills that process if it does not. */
async function stop(entry: SandboxEntry): Promise<void> {
  const { pid } = entry.record!;
  try {
    const { agent, container } = await attachContainer(entry);
    try {
      await container.kill('SIGKILL', { all: true });
    } finally {
      agent.close();
    }
  } catch {
    // The agent does not answer: the VM is in trouble, and its process goes below.
  }
  if (await exited(entry, STOP_TIMEOUT_MS)) return;
  process.kill(pid, 'SIGKILL');
  if (!await exited(entry, STOP_TIMEOUT_MS)) throw new Error(`sandbox ${entry.id}: its process ${pid} survived SIGKILL`);
}

export async function rm(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    force: { type: 'boolean', short: 'f' },
    ...CONFIG_OPTION,
    help: { type: 'boolean', short: 'h' },
  }, 'rm', true);
  if (values.help) {
    console.log(rmHelp);
    return 0;
  }
  if (positionals.length === 0) throw new HakoError('INVALID_ARGUMENT', "missing sandbox ID (see 'hako ps')");
  const dir = stateDir(commandConfig(values.config));
  // Every ID is checked before anything is removed.
  const entries = positionals.map((id) => findSandbox(dir, id));
  if (!values.force) {
    for (const e of entries) {
      if (!e.record) throw new Error(`sandbox ${e.id} has no ${RECORD_FILE}: it is still starting, or was made through the API; use --force to remove it anyway`);
      if (e.running) throw new Error(`sandbox ${e.id} is running (pid ${e.record.pid}); stop it with 'hako kill ${e.id}', or use --force`);
    }
  }
  for (const e of entries) {
    if (e.running) await stop(e);
    unmountAndRemove(e.dir);
    console.log(e.id);
  }
  return 0;
}
