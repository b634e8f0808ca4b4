// `hako config show|default`: the configuration hako runs with, and the
// documented default file (host/config/).
import { HakoError } from '../errors.js';
import { DEFAULT_CONFIG_PATH, DROP_IN_DIR, loadConfig } from '../config/load.js';
import { documentedDefaults, showConfig } from '../config/render.js';
import { parse } from './args.js';

export const configHelp = `Usage: hako config <show|default> [options]

hako reads ${DEFAULT_CONFIG_PATH} (or the file named by --config or
$HAKO_CONFIG), then every *.toml file in the ${DROP_IN_DIR} directory beside it, in
file-name order. Tables merge key by key; a later value replaces an earlier
one, arrays too. A missing file or ${DROP_IN_DIR} means the defaults; a file that
does not parse, an unknown key or a value of the wrong type is an error naming
the file, line and key.

Commands:
  show [--config FILE]   print the merged configuration as TOML, each value
                         followed by where it came from (default or FILE:LINE)
  default                print the documented default file: every key with its
                         meaning and default

Run 'hako config <command> --help' for details.`;

const showHelp = `Usage: hako config show [--config FILE]

Prints the configuration hako runs with, as TOML: each value is followed by
a comment naming where it came from, "default" or FILE:LINE.

Options:
  --config FILE   the base file (default: $HAKO_CONFIG, else ${DEFAULT_CONFIG_PATH});
                  its ${DROP_IN_DIR} directory is read too. A file named this way
                  must exist
  -h, --help      show this help`;

const defaultHelp = `Usage: hako config default

Prints the documented default configuration file (config/configuration.toml in
the hako sources): every key commented out at its default, with its meaning.`;

function show(argv: string[]): number {
  const { values } = parse(argv, { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, 'config show');
  if (values.help) {
    console.log(showHelp);
    return 0;
  }
  if (values.config === '') throw new HakoError('INVALID_ARGUMENT', '--config expects a file path, got ""');
  process.stdout.write(showConfig(values.config === undefined ? loadConfig() : loadConfig({ path: values.config })));
  return 0;
}

function printDefault(argv: string[]): number {
  const { values } = parse(argv, { help: { type: 'boolean', short: 'h' } }, 'config default');
  if (values.help) {
    console.log(defaultHelp);
    return 0;
  }
  process.stdout.write(documentedDefaults());
  return 0;
}

const subcommands: Record<string, (argv: string[]) => number> = { show, default: printDefault };

export async function config(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(configHelp);
    return 0;
  }
  const sub = name === undefined || !Object.hasOwn(subcommands, name) ? undefined : subcommands[name];
  if (!sub) {
    throw new HakoError('INVALID_ARGUMENT', name === undefined
      ? "missing subcommand: show or default (see 'hako config --help')"
      : `unknown subcommand ${JSON.stringify(name)}: expected show or default (see 'hako config --help')`);
  }
  return sub(rest);
}
