// `hako ps`: the sandboxes of this host, from their state records.
import { listSandboxes, type SandboxEntry } from '../sandbox/state.js';
import { parse } from './args.js';
import { commandConfig, CONFIG_OPTION, stateDir } from './run-args.js';

export const psHelp = `Usage: hako ps [-q] [--config FILE]

Lists the sandboxes of this host ('hako run' makes them), oldest first:
  ID        what 'hako exec', 'hako kill' and 'hako rm' take (a unique prefix
            will do)
  STATUS    running (with the pid of its hako process), dead (that process is
            gone: remove what it left with 'hako rm ID'), or unknown (no
            record yet: still starting, or made through the API)
  CREATED   when, in UTC
  IMAGE     its root file system
  COMMAND   the container's command
They are kept in $HAKO_STATE_DIR, else paths.state_dir (default /run/hako).

Options:
  -q, --quiet     print the IDs only
  --config FILE   configuration file (see 'hako config --help')
  -h, --help      show this help`;

function status(e: SandboxEntry): string {
  if (!e.record) return 'unknown';
  return e.running ? `running (pid ${e.record.pid})` : 'dead';
}

/** The command as a shell would take it back, quoting only where needed. */
function shellWords(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

export async function ps(argv: string[]): Promise<number> {
  const { values } = parse(argv, { quiet: { type: 'boolean', short: 'q' }, ...CONFIG_OPTION, help: { type: 'boolean', short: 'h' } }, 'ps');
  if (values.help) {
    console.log(psHelp);
    return 0;
  }
  const entries = listSandboxes(stateDir(commandConfig(values.config)));
  if (values.quiet) {
    for (const e of entries) console.log(e.id);
    return 0;
  }
  const rows = [['ID', 'STATUS', 'CREATED', 'IMAGE', 'COMMAND'], ...entries.map((e) => [
    e.id,
    status(e),
    e.record ? e.record.created.replace(/\.\d+Z$/, 'Z') : '',
    e.record?.image ?? '',
    e.record ? shellWords(e.record.command) : '',
  ])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 2))).join('').trimEnd());
  return 0;
}
