// `hako exec`: another process in the container of a running `hako run`,
// through a connection of our own to its sandbox's guest agent.
import { randomBytes } from 'node:crypto';
import { HakoError } from '../errors.js';
import { attachContainer, findSandbox } from '../sandbox/state.js';
import { parse } from './args.js';
import { attach, SignalRelay } from './attach.js';
import { EMPTY_USER_DB, resolveUser } from '../image/users.js';
import { commandConfig, CONFIG_OPTION, envOptions, splitOperands, stateDir, workdirOption } from './run-args.js';

export const execHelp = `Usage: hako exec [options] ID [--] CMD [ARGS...]

Runs CMD in the container of the running sandbox ID (see 'hako ps'; a unique
prefix will do), with its output on this terminal, and exits with its exit
status. Options end at ID.

Options:
  -i, --interactive      send this standard input to the process's
  -t, --tty              give the process a terminal (stderr goes to it too);
                         with -i on a terminal, ours is in raw mode meanwhile
  -e, --env NAME=VALUE   set a variable on top of the container's; NAME alone
                         passes ours on; repeatable
  -w, --workdir DIR      working directory (default /)
  -u, --user UID[:GID]   user to run as (default root)
  --config FILE          configuration file (see 'hako config --help')
  -h, --help             show this help

Signals: the first SIGINT (Ctrl-C), SIGTERM, SIGHUP or SIGQUIT hako gets goes
to the process; a second one leaves it running and exits.

Exit status: the process's exit code, or 128 + the number of the signal that
killed it (or of the second signal hako got); 2 on bad input, 1 when hako
fails.`;

const OPTIONS = {
  interactive: { type: 'boolean', short: 'i' },
  tty: { type: 'boolean', short: 't' },
  env: { type: 'string', short: 'e', multiple: true },
  workdir: { type: 'string', short: 'w' },
  user: { type: 'string', short: 'u' },
  ...CONFIG_OPTION,
  help: { type: 'boolean', short: 'h' },
} as const;

export async function exec(argv: string[]): Promise<number> {
  const split = splitOperands(argv, OPTIONS);
  const { values } = parse(split.options, OPTIONS, 'exec');
  if (values.help) {
    console.log(execHelp);
    return 0;
  }
  const [id, ...rest] = split.operands;
  const args = rest[0] === '--' ? rest.slice(1) : rest;
  if (id === undefined || args.length === 0) {
    throw new HakoError('INVALID_ARGUMENT', `missing ${id === undefined ? 'sandbox ID and ' : ''}command: 'hako exec [options] ID [--] CMD [ARGS...]'`);
  }
  const env = envOptions(values.env);
  const cwd = workdirOption(values.workdir) ?? '/';
  const entry = findSandbox(stateDir(commandConfig(values.config)), id);
  const user = values.user === undefined ? undefined : resolveUser(values.user, entry.record!.users ?? EMPTY_USER_DB, '--user');
  const tty = values.tty ?? false;
  const stdin = values.interactive ?? false;

  const { agent, container } = await attachContainer(entry);
  let relay: SignalRelay | undefined;
  let abandoned = false;
  try {
    const proc = await container.exec({
      args,
      env: { ...entry.record!.env, ...env },
      cwd,
      tty,
      stdin,
      user,
      // Exec ids stay taken in the agent; other `hako exec`s into this container pick theirs at random too.
      execId: randomBytes(6).toString('hex'),
    });
    relay = new SignalRelay();
    const status = await attach(proc, relay, {
      tty,
      stdin,
      abandon: () => {
        abandoned = true;
        agent.close();
      },
    });
    return status.exitCode;
  } catch (e) {
    if (abandoned) return relay!.exitStatus!;
    throw e;
  } finally {
    relay?.close();
    agent.close();
  }
}
