// `hako template create|ls|rm`: manage the VM template cache (host/template/).
import { HakoError } from '../errors.js';
import { logConfigFiles, logger } from '../config/logging.js';
import { checkTemplateCpu, pvmHost } from '../config/settings.js';
import { listTemplates, removeAllTemplates, removeTemplate, templateRoot } from '../template/cache.js';
import { ensureTemplate } from '../template/create.js';
import { bundledTemplateSpec } from '../template/spec.js';
import { integerOption, parse } from './args.js';
import { commandConfig, CONFIG_OPTION } from './run-args.js';

export const templateHelp = `Usage: hako template <create|ls|rm> [options]

VM templates are snapshots of the bundled guest taken once its init is up;
'hako boot', 'hako run' and the Node API start clones of them in seconds
instead of cold-booting. Each is keyed by the kernel, initramfs, command line,
vCPUs, memory, CPU template and devices (guest.rng, virtiofs.cache), and kept
in templates.cache_dir (default: the templates directory in
\${HAKO_CACHE_DIR:-\${XDG_CACHE_HOME:-~/.cache}/hako}; $HAKO_CACHE_DIR, when
set, overrides the configuration).

Commands:
  create [--vcpus N] [--memory MiB]   make the template for that shape
                                      (default: resources.vcpus and
                                      resources.memory_mib) unless it exists
  ls                                  list templates: key, shape, size, age
  rm KEY... | --all                   remove templates

Each command takes --config FILE (see 'hako config --help').
Run 'hako template <command> --help' for details.`;

const createHelp = `Usage: hako template create [--vcpus N] [--memory MiB] [--config FILE]

Cold-boots the bundled guest with N vCPUs (default: resources.vcpus) and MiB
of RAM (default: resources.memory_mib) and snapshots it as a template, unless
that template exists. Prints the template's key on standard output.`;

const lsHelp = `Usage: hako template ls [--config FILE]

Lists the templates: key, vCPUs, memory, CPU template, size on disk, age.`;

const rmHelp = `Usage: hako template rm KEY... | --all [--config FILE]

Removes the templates with these keys (see 'hako template ls'), or all of them
and any left by interrupted creations. Clones already running are not affected.`;

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(0)} MiB`;

async function create(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    vcpus: { type: 'string' },
    memory: { type: 'string' },
    ...CONFIG_OPTION,
    help: { type: 'boolean', short: 'h' },
  }, 'template create');
  if (values.help) {
    console.log(createHelp);
    return 0;
  }
  const config = commandConfig(values.config);
  const log = logger(config);
  logConfigFiles(config, log);
  const pvm = pvmHost(config);
  checkTemplateCpu(config, pvm);
  const spec = bundledTemplateSpec({
    vcpus: integerOption(values.vcpus, 'vcpus') ?? config.values.resources.vcpus,
    memoryMiB: integerOption(values.memory, 'memory') ?? config.values.resources.memory_mib,
  }, pvm, config);
  const template = await ensureTemplate(spec, templateRoot(process.env, config), { progress: log.info });
  if (!template.created) log.info(`VM template ${template.key} already exists (${template.dir})`);
  console.log(template.key);
  return 0;
}

function ls(argv: string[]): number {
  const { values } = parse(argv, { ...CONFIG_OPTION, help: { type: 'boolean', short: 'h' } }, 'template ls');
  if (values.help) {
    console.log(lsHelp);
    return 0;
  }
  const config = commandConfig(values.config);
  const root = templateRoot(process.env, config);
  const rows = listTemplates(root).map((t) => {
    const vm = t.manifest?.vm;
    return [t.key, vm ? String(vm.vcpus) : '-', vm ? `${vm.memoryMiB} MiB` : '-', vm?.cpuTemplate ?? '-',
      mib(t.bytes), age(Date.now() - t.createdMs), t.problem ? `unusable: ${t.problem}` : ''];
  });
  if (rows.length === 0) {
    logger(config).info(`no templates in ${root}`);
    return 0;
  }
  const table = [['KEY', 'VCPUS', 'MEMORY', 'CPU', 'SIZE', 'AGE', ''], ...rows];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  return 0;
}

function rm(argv: string[]): number {
  const { values, positionals } = parse(argv, {
    all: { type: 'boolean' },
    ...CONFIG_OPTION,
    help: { type: 'boolean', short: 'h' },
  }, 'template rm', true);
  if (values.help) {
    console.log(rmHelp);
    return 0;
  }
  const root = templateRoot(process.env, commandConfig(values.config));
  if (values.all) {
    if (positionals.length > 0) throw new HakoError('INVALID_ARGUMENT', `give template keys or --all, not both (got ${positionals.join(' ')} and --all)`);
    for (const key of removeAllTemplates(root)) console.log(key);
    return 0;
  }
  if (positionals.length === 0) throw new HakoError('INVALID_ARGUMENT', "give the keys of the templates to remove, or --all (see 'hako template ls')");
  for (const key of positionals) {
    removeTemplate(root, key);
    console.log(key);
  }
  return 0;
}

const subcommands: Record<string, (argv: string[]) => number | Promise<number>> = { create, ls, rm };

export async function template(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(templateHelp);
    return 0;
  }
  const sub = name === undefined ? undefined : subcommands[name];
  if (!sub) {
    throw new HakoError('INVALID_ARGUMENT', name === undefined
      ? "missing subcommand: create, ls or rm (see 'hako template --help')"
      : `unknown subcommand ${JSON.stringify(name)}: expected create, ls or rm (see 'hako template --help')`);
  }
  return sub(rest);
}
