// Argument parsing shared by the CLI commands: node's parseArgs plus the
// number checks and messages it does not give.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HakoError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: boolean }>>;

/** Parses `argv`; operands (positionals) are an error unless `allowPositionals`. */
export function parse<T extends Options>(argv: string[], options: T, command: string, allowPositionals = false): Parsed<T> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (e) {
    // parseArgs messages already name the option; keep their first line.
    const first = (e as Error).message.split('\n')[0]!;
    throw new HakoError('INVALID_ARGUMENT', `${first} (see 'hako ${command} --help')`);
  }
}

export function integerOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new HakoError('INVALID_ARGUMENT', `--${name} expects a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}
