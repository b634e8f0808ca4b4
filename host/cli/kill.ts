// `hako kill`: a signal to the container of a running sandbox.
import { HakoError } from '../errors.js';
import { signalNumber } from '../sandbox/process.js';
import { attachContainer, findSandbox } from '../sandbox/state.js';
import { parse } from './args.js';
import { commandConfig, CONFIG_OPTION, stateDir } from './run-args.js';

export const killHelp = `Usage: hako kill [--all] ID [SIGNAL]

Sends SIGNAL (a name such as TERM or SIGTERM, or a number; default KILL) to
the container's main process in the running sandbox ID (see 'hako ps'; a
unique prefix will do). When that process exits, its 'hako run' exits with
128 + the signal's number (unless the process handles it) and destroys the
sandbox.

Options:
  -a, --all       signal every process of the container
  --config FILE   configuration file (see 'hako config --help')
  -h, --help      show this help`;

export async function kill(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    all: { type: 'boolean', short: 'a' },
    ...CONFIG_OPTION,
    help: { type: 'boolean', short: 'h' },
  }, 'kill', true);
  if (values.help) {
    console.log(killHelp);
    return 0;
  }
  const [id, signalArg, ...extra] = positionals;
  if (id === undefined || extra.length > 0) {
    throw new HakoError('INVALID_ARGUMENT', `expected ID [SIGNAL], got ${positionals.length} operands (see 'hako kill --help')`);
  }
  const signal = signalNumber(signalArg === undefined ? 'SIGKILL' : /^\d+$/.test(signalArg) ? Number(signalArg) : signalArg.toUpperCase());
  const entry = findSandbox(stateDir(commandConfig(values.config)), id);
  const { agent, container } = await attachContainer(entry);
  try {
    await container.kill(signal, { all: values.all ?? false });
  } finally {
    agent.close();
  }
  return 0;
}
