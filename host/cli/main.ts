#!/usr/bin/env node
// The hako command line: dispatches to one module per command and turns
// errors into one-line messages and exit codes (2 for bad input).
import { isUsageError } from '../errors.js';
import { boot } from './boot.js';
import { config } from './config.js';
import { exec } from './exec.js';
import { kill } from './kill.js';
import { ps } from './ps.js';
import { rm } from './rm.js';
import { run } from './run.js';
import { template } from './template.js';

const commands: Record<string, (argv: string[]) => Promise<number>> = { run, ps, exec, kill, rm, boot, config, template };

const usage = `Usage: hako <command> [options]

Commands:
  run        run a container in a fresh sandbox (a microVM) on this terminal
  ps         list the sandboxes of this host
  exec       run another process in a sandbox's container
  kill       send a signal to a sandbox's container
  rm         remove the state of stopped sandboxes
  boot       boot a kernel in a microVM with the console on this terminal
  config     show the configuration hako runs with, or the documented defaults
  template   create, list and remove VM templates (snapshots 'hako boot' clones)

Run 'hako <command> --help' for a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    console.error(`hako: unknown command ${JSON.stringify(name)}\n\n${usage}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (e) {
    if (isUsageError(e)) {
      console.error(`hako ${name}: ${e.message}`);
      return 2;
    }
    console.error(`hako ${name}: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env.HAKO_DEBUG) console.error(e);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
