// Argument parsing shared by the CLI commands: node's parseArgs plus the
// number checks and messages it does not give.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HakoError } from '../errors.js';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, command: string) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (e) {
    // parseArgs messages already name the option; drop its error code prefix.
    throw new HakoError('INVALID_ARGUMENT', `${(e as Error).message.replace(/^.*?: /, '')} (see 'hako ${command} --help')`);
  }
}

export function integerOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new HakoError('INVALID_ARGUMENT', `--${name} expects a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}
