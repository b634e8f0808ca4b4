// `hako template create|ls|rm`: manage the VM template cache (host/template/).
import { HakoError } from '../errors.js';
import { isPvmHost } from '../vmm/kvm.js';
import { listTemplates, removeAllTemplates, removeTemplate, templateRoot } from '../template/cache.js';
import { ensureTemplate } from '../template/create.js';
import { bundledTemplateSpec } from '../template/spec.js';
import { integerOption, parse } from './args.js';

export const templateHelp = `Usage: hako template <create|ls|rm> [options]

VM templates are snapshots of the bundled guest taken once its init is up;
'hako boot' starts clones of them in seconds instead of cold-booting. Each is
keyed by the kernel, initramfs, command line, vCPUs, memory and CPU template,
and kept in \${HAKO_CACHE_DIR:-\${XDG_CACHE_HOME:-~/.cache}/hako}/templates.

Commands:
  create [--vcpus N] [--memory MiB]   make the template for that shape
                                      (default 1 vCPU, 256 MiB) unless it exists
  ls                                  list templates: key, shape, size, age
  rm KEY... | --all                   remove templates

Run 'hako template <command> --help' for details.`;

const createHelp = `Usage: hako template create [--vcpus N] [--memory MiB]

Cold-boots the bundled guest with N vCPUs (default 1) and MiB of RAM
(default 256) and snapshots it as a template, unless that template exists.
Prints the template's key on standard output.`;

const lsHelp = `Usage: hako template ls

Lists the templates: key, vCPUs, memory, CPU template, size on disk, age.`;

const rmHelp = `Usage: hako template rm KEY... | --all

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
    help: { type: 'boolean', short: 'h' },
  }, 'template create');
  if (values.help) {
    console.log(createHelp);
    return 0;
  }
  const spec = bundledTemplateSpec({
    vcpus: integerOption(values.vcpus, 'vcpus') ?? 1,
    memoryMiB: integerOption(values.memory, 'memory') ?? 256,
  }, isPvmHost());
  const template = await ensureTemplate(spec, templateRoot(), { progress: (line) => console.error(`hako: ${line}`) });
  if (!template.created) console.error(`hako: VM template ${template.key} already exists (${template.dir})`);
  console.log(template.key);
  return 0;
}

function ls(argv: string[]): number {
  const { values } = parse(argv, { help: { type: 'boolean', short: 'h' } }, 'template ls');
  if (values.help) {
    console.log(lsHelp);
    return 0;
  }
  const root = templateRoot();
  const rows = listTemplates(root).map((t) => {
    const vm = t.manifest?.vm;
    return [t.key, vm ? String(vm.vcpus) : '-', vm ? `${vm.memoryMiB} MiB` : '-', vm?.cpuTemplate ?? '-',
      mib(t.bytes), age(Date.now() - t.createdMs), t.problem ? `unusable: ${t.problem}` : ''];
  });
  if (rows.length === 0) {
    console.error(`hako: no templates in ${root}`);
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
    help: { type: 'boolean', short: 'h' },
  }, 'template rm', true);
  if (values.help) {
    console.log(rmHelp);
    return 0;
  }
  const root = templateRoot();
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
