// Each configuration key changes what it says it does, without a VM: the
// functions `hako boot`, `hako template`, `hako run` and the Node API resolve
// their settings with, and the CLI's answers to bad configuration files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../host/native.js';
import { HakoError } from '../../host/errors.js';
import { loadConfig, type LoadedConfig } from '../../host/config/load.js';
import { logger, traceAreas } from '../../host/config/logging.js';
import { checkSandboxGuest, checkTemplateCpu, cpuTemplate, pvmHost } from '../../host/config/settings.js';
import { bootHelp, bootPlan, type BootFlags } from '../../host/cli/boot.js';
import { templateKey, templateRoot } from '../../host/template/cache.js';
import { templateInputs, type TemplateSpec } from '../../host/template/spec.js';
import { imageRoot } from '../../host/image/cache.js';
import { defaultStateDir, Sandbox } from '../../host/sandbox/sandbox.js';
import { isPvmHost } from '../../host/vmm/kvm.js';

const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-config-wiring-'));
const env = { HOME: '/home/h' };
let n = 0;

/** A configuration file with `text` (and `dropIns` in config.d/ beside it); returns its path. */
function file(text: string, dropIns: Record<string, string> = {}): string {
  const dir = path.join(tmp, String(n++));
  fs.mkdirSync(path.join(dir, 'config.d'), { recursive: true });
  for (const [name, t] of Object.entries(dropIns)) fs.writeFileSync(path.join(dir, 'config.d', name), t);
  fs.writeFileSync(path.join(dir, 'configuration.toml'), text);
  return path.join(dir, 'configuration.toml');
}

const config = (text: string): LoadedConfig => loadConfig({ path: file(text), env });
const plan = (text: string, flags: BootFlags = {}, pvm = false) => bootPlan(flags, config(text), pvm);

test('hako boot: resources.* are the defaults of --vcpus and --memory; the flags win', () => {
  const text = '[resources]\nvcpus = 2\nmemory_mib = 512\n';
  assert.equal([plan(text).vcpus, plan(text).memoryMiB], [2, 512]);
  assert.equal([plan('').vcpus, plan('').memoryMiB], [1, 256]);
  const flags = plan(text, { vcpus: '3', memory: '128' });
  assert.equal([flags.vcpus, flags.memoryMiB], [3, 128]);
  assert.match(bootHelp, /--vcpus N +number of vCPUs \(default: resources\.vcpus\)/);
  assert.match(bootHelp, /\(default: resources\.memory_mib\)/);
  assert.match(bootHelp, /--config FILE/);
});

test('hako boot: templates.enabled = false cold-boots like --no-template', () => {
  assert.is(plan('').fromTemplate, true);
  assert.is(plan('', { 'no-template': true }).fromTemplate, false);
  assert.is(plan('[templates]\nenabled = false\n').fromTemplate, false);
});

test('hako boot: guest.* are the defaults of --kernel, --initrd and --cmdline; another guest has no template', () => {
  const p = plan('[guest]\nkernel = "/k/vmlinux"\ninitramfs = "/k/initrd"\ncmdline = "console=ttyS0 quiet"\n');
  assert.equal([p.kernel, p.initrd, p.cmdline, p.fromTemplate], ['/k/vmlinux', '/k/initrd', 'console=ttyS0 quiet', false]);
  assert.is(plan('[guest]\ncmdline = "quiet"\n').fromTemplate, false);
  assert.is(plan('[guest]\nkernel = "/k/vmlinux"\n', { kernel: '/other' }).kernel, '/other');
  const bundled = plan('');
  assert.equal([bundled.kernel, bundled.initrd, bundled.cmdline], [undefined, undefined, undefined]);
  assert.is(plan('').rng, true);
  assert.is(plan('[guest]\nrng = false\n').rng, false);
});

test('hypervisor.pvm overrides detection; hypervisor.cpu_template picks the CPU template', () => {
  assert.is(pvmHost(config('[hypervisor]\npvm = "on"\n')), true);
  assert.is(pvmHost(config('[hypervisor]\npvm = "off"\n')), false);
  assert.is(isPvmHost('auto', path.join(tmp, 'no-such-module')), false);
  assert.is(isPvmHost('auto', tmp), true);
  assert.is(cpuTemplate(config(''), true), 'compatible');
  assert.is(cpuTemplate(config(''), false), 'host');
  assert.is(cpuTemplate(config('[hypervisor]\ncpu_template = "compatible"\n'), false), 'compatible');
  // A PVM host as the configuration says: the template is the PVM one, and boot still clones.
  const onPvm = plan('', {}, true);
  assert.equal([onPvm.cpuTemplate, onPvm.pvmHost, onPvm.fromTemplate], ['compatible', true, true]);
  // Another CPU template than the host's default: boot cold-boots, templates refuse it.
  const other = plan('[hypervisor]\ncpu_template = "compatible"\n');
  assert.equal([other.cpuTemplate, other.fromTemplate], ['compatible', false]);
  assert.is(plan('[hypervisor]\ncpu_template = "compatible"\n', { 'cpu-template': 'host' }).cpuTemplate, 'host');
  assert.throws(() => checkTemplateCpu(config('[hypervisor]\ncpu_template = "compatible"\n'), false),
    /hypervisor\.cpu_template = "compatible" \(.*configuration\.toml:2\): templates use this host's default CPU template \(host\)/);
});

test('virtiofs.cache: the cache mode of hako boot --share', () => {
  assert.is(plan('', { share: tmp }).shares![0]!.cache, 'auto');
  const p = plan('[virtiofs]\ncache = "none"\n', { share: `${tmp}:ro` });
  assert.equal(p.shares, [{ path: tmp, tag: 'hako-shared', readOnly: true, cache: 'none' }]);
});

test('the template key covers guest.rng and virtiofs.cache (and their defaults keep existing keys)', () => {
  const kernel = path.join(tmp, 'vmlinux');
  fs.writeFileSync(kernel, 'kernel');
  const spec: TemplateSpec = {
    kernel, initrd: kernel, cmdline: 'console=ttyS0 hako.template=1', vcpus: 1, memoryMiB: 256, cpuTemplate: 'host', vsock: true, share: true,
  };
  const key = (s: TemplateSpec) => templateKey(templateInputs(s));
  assert.is(key({ ...spec, rng: true, shareCache: 'auto' }), key(spec));
  assert.not.equal(key({ ...spec, rng: false }), key(spec));
  assert.not.equal(key({ ...spec, shareCache: 'none' }), key(spec));
  assert.not.ok(templateInputs({ ...spec, rng: false }).devices.includes('rng'));
});

test('paths.cache_dir and templates.cache_dir move the caches; $HAKO_CACHE_DIR wins', () => {
  const cached = file('[paths]\ncache_dir = "/var/cache/hako"\n');
  assert.is(templateRoot({ HAKO_CONFIG: cached }), '/var/cache/hako/templates');
  assert.is(imageRoot({ HAKO_CONFIG: cached }), '/var/cache/hako/images');
  const both = file('[paths]\ncache_dir = "/var/cache/hako"\n[templates]\ncache_dir = "/srv/templates"\n');
  assert.is(templateRoot({ HAKO_CONFIG: both }), '/srv/templates');
  assert.is(imageRoot({ HAKO_CONFIG: both }), '/var/cache/hako/images', 'images stay in the cache root');
  assert.is(templateRoot({ HAKO_CONFIG: both, HAKO_CACHE_DIR: '/c' }), '/c/templates');
  assert.is(imageRoot({ HAKO_CONFIG: both, HAKO_CACHE_DIR: '/c' }), '/c/images');
  // An explicit configuration (--config, SandboxOptions.config) over the one the environment names.
  assert.is(templateRoot({}, loadConfig({ path: both, env: {} })), '/srv/templates');
});

test('paths.state_dir: the Node API\'s default state directory; $HAKO_STATE_DIR wins', () => {
  const f = file('[paths]\nstate_dir = "/srv/hako"\n');
  assert.is(defaultStateDir({ HAKO_CONFIG: f }), '/srv/hako');
  assert.is(defaultStateDir({ HAKO_CONFIG: f, HAKO_STATE_DIR: '/x' }), '/x');
});

test('logging.level filters the "hako:" lines; logging.trace adds to $HAKO_TRACE', () => {
  const printed = (level: string) => {
    const lines: string[] = [];
    const log = logger(config(`[logging]\nlevel = "${level}"\n`), (t) => lines.push(t));
    log.error('e');
    log.warn('w');
    log.info('i');
    log.debug('d');
    return lines.join('');
  };
  assert.is(printed('info'), 'hako: e\nhako: w\nhako: i\n');
  assert.is(printed('error'), 'hako: e\n');
  assert.is(printed('debug'), 'hako: e\nhako: w\nhako: i\nhako: d\n');
  assert.equal(traceAreas(config(''), {}), []);
  assert.equal(traceAreas(config('[logging]\ntrace = ["startup"]\n'), {}), ['startup']);
  assert.equal(traceAreas(config(''), { HAKO_TRACE: 'startup,other' }), ['startup']);
  assert.equal(traceAreas(config('[logging]\ntrace = ["startup"]\n'), { HAKO_TRACE: 'startup' }), ['startup']);
});

test('sandboxes refuse what only hako boot can do, naming the key and where it was set', () => {
  checkSandboxGuest(config(''), false);
  assert.throws(() => checkSandboxGuest(config('[guest]\nkernel = "/k/vmlinux"\n'), false),
    /^guest\.kernel = "\/k\/vmlinux" \(.*configuration\.toml:2\): sandboxes run the bundled guest/);
  assert.throws(() => checkSandboxGuest(config('[templates]\nenabled = false\n'), false), /templates\.enabled = false .*: sandboxes start as clones/);
});

test('Node API: SandboxOptions.config applies before any VM work', async () => {
  try {
    await Sandbox.create({ config: config('[templates]\nenabled = false\n') });
    assert.unreachable('expected a refusal');
  } catch (e) {
    assert.instance(e, HakoError);
    assert.is((e as HakoError).code, 'INVALID_ARGUMENT');
    assert.match((e as Error).message, /templates\.enabled = false/);
  }
});

function hako(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, HAKO_CONFIG: path.join(tmp, 'none.toml') } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('CLI: a bad value in a drop-in fails hako boot, run and template with exit 2 naming file, line and key', () => {
  const base = file('[resources]\nvcpus = 2\n', { '50-bad.toml': '# tuning\n[virtiofs]\ncache = "sometimes"\n' });
  const dropIn = path.join(path.dirname(base), 'config.d', '50-bad.toml');
  for (const args of [['boot'], ['run'], ['template', 'create'], ['template', 'ls']]) {
    // For run, the command would follow; the configuration fails before it is looked for.
    const { code, stderr } = hako(...args, '--config', base);
    assert.is(code, 2, `${args.join(' ')}: ${stderr}`);
    assert.ok(stderr.includes(`${dropIn}:3: virtiofs.cache: must be one of "none", "auto", "always", got "sometimes"`), stderr);
  }
  // HAKO_CONFIG names the file when --config does not.
  const r = spawnSync(process.execPath, [cli, 'boot'], { encoding: 'utf8', env: { ...process.env, HAKO_CONFIG: base } });
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr, /50-bad\.toml:3: virtiofs\.cache/);
});

test('CLI: hako template ls follows templates.cache_dir and logging.level', () => {
  const dir = path.join(tmp, 'templates-here');
  const info = hako('template', 'ls', '--config', file(`[templates]\ncache_dir = "${dir}"\n`));
  assert.is(info.code, 0, info.stderr);
  assert.is(info.stderr, `hako: no templates in ${dir}\n`);
  const quiet = hako('template', 'ls', '--config', file(`[templates]\ncache_dir = "${dir}"\n[logging]\nlevel = "warn"\n`));
  assert.equal([quiet.code, quiet.stderr], [0, '']);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
