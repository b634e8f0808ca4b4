import { HakoError } from '../errors.js';

/** A kernel, initrd, command line or memory size that cannot be booted; the message names the input and what was expected. */
export class BootError extends HakoError {
  constructor(message: string) {
    super('BAD_KERNEL', message);
    this.name = 'BootError';
  }
}
