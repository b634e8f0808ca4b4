// What the loaded configuration means on this host: the values the commands
// and the Node API act on, with the environment variables that override keys
// applied (HAKO_STATE_DIR, HAKO_CACHE_DIR), so every caller resolves a key the
// same way.
import path from 'node:path';
import { defaultTemplate, type CpuTemplateName } from '../cpu/template.js';
import { HakoError } from '../errors.js';
import { isPvmHost } from '../vmm/kvm.js';
import type { ConfigKey } from './schema.js';
import type { LoadedConfig } from './load.js';
import { sourceLabel } from './render.js';

/** hypervisor.pvm: detected when "auto". */
export function pvmHost(config: LoadedConfig): boolean {
  return isPvmHost(config.values.hypervisor.pvm);
}

/** hypervisor.cpu_template: "auto" is the host's default (compatible on PVM hosts). */
export function cpuTemplate(config: LoadedConfig, pvm: boolean): CpuTemplateName {
  const name = config.values.hypervisor.cpu_template;
  return name === 'auto' ? defaultTemplate(pvm) : name;
}

/** Where sandboxes keep their state: $HAKO_STATE_DIR, else paths.state_dir. */
export function stateDir(config: LoadedConfig, env: NodeJS.ProcessEnv = process.env): string {
  return env.HAKO_STATE_DIR || config.values.paths.state_dir;
}

/** The cache root: $HAKO_CACHE_DIR, else paths.cache_dir. */
export function cacheDir(config: LoadedConfig, env: NodeJS.ProcessEnv = process.env): string {
  return env.HAKO_CACHE_DIR || config.values.paths.cache_dir;
}

/** The template cache: the templates directory in $HAKO_CACHE_DIR, else templates.cache_dir. */
export function templatesDir(config: LoadedConfig, env: NodeJS.ProcessEnv = process.env): string {
  return env.HAKO_CACHE_DIR ? path.join(env.HAKO_CACHE_DIR, 'templates') : config.values.templates.cache_dir;
}

/** The image cache: the images directory in the cache root. */
export function imagesDir(config: LoadedConfig, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheDir(config, env), 'images');
}

/** "KEY = VALUE (FILE:LINE)", for messages about a key's value. */
export function describeKey(config: LoadedConfig, key: ConfigKey): string {
  const [table, name] = key.split('.') as [string, string];
  const value = (config.values as unknown as Record<string, Record<string, unknown>>)[table]![name];
  return `${key} = ${JSON.stringify(value)} (${sourceLabel(config.provenance[key])})`;
}

const refuse = (config: LoadedConfig, key: ConfigKey, why: string): never => {
  throw new HakoError('INVALID_ARGUMENT', `${describeKey(config, key)}: ${why}`);
};

/** Templates are made with the host's default CPU template (Vm.restore accepts no other): refuses another. */
export function checkTemplateCpu(config: LoadedConfig, pvm: boolean): void {
  if (cpuTemplate(config, pvm) !== defaultTemplate(pvm)) {
    refuse(config, 'hypervisor.cpu_template', `templates use this host's default CPU template (${defaultTemplate(pvm)}); `
      + 'another applies to \'hako boot\' only, which then cold-boots');
  }
}

/**
 * Sandboxes are clones of a template of the bundled guest, whose agent runs their containers:
 * refuses a configuration that asks for another guest, for no templates or for a CPU template
 * templates cannot have.
 */
export function checkSandboxGuest(config: LoadedConfig, pvm: boolean): void {
  for (const name of ['kernel', 'initramfs', 'cmdline'] as const) {
    if (config.values.guest[name] !== '') {
      refuse(config, `guest.${name}`, 'sandboxes run the bundled guest, whose agent runs their containers; this key applies to \'hako boot\' only');
    }
  }
  if (!config.values.templates.enabled) {
    refuse(config, 'templates.enabled', 'sandboxes start as clones of a template; cold boots apply to \'hako boot\' only');
  }
  checkTemplateCpu(config, pvm);
}
