// A configuration file hako cannot use. The message starts "FILE:LINE: KEY: "
// like a compiler's, so an editor can jump to it; the parts are also fields
// for programs and tests.
import { HakoError } from '../errors.js';

export class ConfigError extends HakoError {
  readonly file: string;
  readonly line: number | undefined;
  readonly key: string | undefined;

  constructor(file: string, line: number | undefined, key: string | undefined, problem: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', `${file}${line === undefined ? '' : `:${line}`}: ${key === undefined ? '' : `${key}: `}${problem}`, options);
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
    this.key = key;
  }
}
