// The configuration loader (host/config/): merge order of the base file and
// its drop-ins, replace versus deep-merge, every kind of bad file named with
// file, line and key, provenance in `hako config show`, and the CLI's errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../host/native.js';
import { ConfigError } from '../../host/config/errors.js';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../../host/config/load.js';
import { scanKeyLines } from '../../host/config/lines.js';
import { documentedDefaults, showConfig } from '../../host/config/render.js';
import { leaves } from '../../host/config/schema.js';

const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-config-'));
const env = { HOME: '/home/h' };
let n = 0;

/** A fresh directory with `base` as configuration.toml (unless undefined) and `dropIns` in config.d/. */
function setup(base: string | undefined, dropIns: Record<string, string> = {}): string {
  const dir = path.join(tmp, String(n++));
  fs.mkdirSync(path.join(dir, 'config.d'), { recursive: true });
  if (base !== undefined) fs.writeFileSync(path.join(dir, 'configuration.toml'), base);
  for (const [name, text] of Object.entries(dropIns)) fs.writeFileSync(path.join(dir, 'config.d', name), text);
  return path.join(dir, 'configuration.toml');
}

function fails(base: string, dropIns: Record<string, string>, expected: { file: string; line: number | undefined; key: string | undefined; message: RegExp }) {
  const file = setup(base, dropIns);
  try {
    loadConfig({ path: file, env });
  } catch (e) {
    assert.instance(e, ConfigError);
    const err = e as ConfigError;
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.is(err.file, path.join(path.dirname(file), expected.file));
    assert.is(err.line, expected.line, err.message);
    assert.is(err.key, expected.key, err.message);
    assert.match(err.message, expected.message);
    assert.ok(err.message.startsWith(`${err.file}${err.line === undefined ? '' : `:${err.line}`}: `), err.message);
    assert.not.match(err.message, /\n/, 'one line');
    return;
  }
  assert.unreachable(`expected ${expected.message}`);
}

test('defaults: every key from the schema, typed', () => {
  const { values, provenance, files } = loadConfig({ path: setup(''), env: { HOME: '/home/h' } });
  assert.equal(values.resources, { vcpus: 1, memory_mib: 256 });
  assert.equal(values.hypervisor, { pvm: 'auto', cpu_template: 'auto' });
  assert.equal(values.guest, { kernel: '', initramfs: '', cmdline: '', rng: true });
  assert.equal(values.paths, { state_dir: '/run/hako', cache_dir: '/home/h/.cache/hako' });
  assert.equal(values.templates, { enabled: true, cache_dir: '/home/h/.cache/hako/templates' });
  assert.equal(values.logging, { level: 'info', trace: [] });
  assert.equal(values.virtiofs, { cache: 'auto' });
  assert.is(files.length, 1);
  for (const { key } of leaves()) assert.equal(provenance[key.join('.') as keyof typeof provenance], { kind: 'default' });
});

test('environment-dependent defaults follow the cache root the other caches use', () => {
  const file = setup('');
  assert.is(loadConfig({ path: file, env: { HOME: '/h', XDG_CACHE_HOME: '/xdg' } }).values.paths.cache_dir, '/xdg/hako');
  const both = loadConfig({ path: file, env: { HOME: '/h', XDG_CACHE_HOME: '/xdg', HAKO_CACHE_DIR: '/c' } }).values;
  assert.is(both.paths.cache_dir, '/c');
  assert.is(both.templates.cache_dir, '/c/templates');
  // A default depending on another key follows that key wherever it was set.
  assert.is(loadConfig({ path: setup('[paths]\ncache_dir = "/var/cache/hako"\n'), env }).values.templates.cache_dir, '/var/cache/hako/templates');
});

test('drop-ins apply in file-name order after the base file', () => {
  const file = setup('[resources]\nvcpus = 2\nmemory_mib = 512\n', {
    '20-b.toml': '[resources]\nvcpus = 4\n',
    '10-a.toml': '[resources]\nvcpus = 3\n\n[guest]\ncmdline = "quiet"\n',
    '30-c.toml': '# only a comment\n',
    'notes.txt': 'not = toml at all [',
    '.hidden.toml': 'not = toml at all [',
  });
  const dir = path.dirname(file);
  const { values, provenance, files } = loadConfig({ path: file, env });
  assert.equal(files, [file, ...['10-a.toml', '20-b.toml', '30-c.toml'].map((f) => path.join(dir, 'config.d', f))]);
  assert.is(values.resources.vcpus, 4);
  assert.is(values.resources.memory_mib, 512);
  assert.is(values.guest.cmdline, 'quiet');
  assert.equal(provenance['resources.vcpus'], { kind: 'file', file: path.join(dir, 'config.d', '20-b.toml'), line: 2 });
  assert.equal(provenance['resources.memory_mib'], { kind: 'file', file, line: 3 });
  assert.equal(provenance['guest.cmdline'], { kind: 'file', file: path.join(dir, 'config.d', '10-a.toml'), line: 5 });
});

test('tables deep-merge; scalars and arrays replace', () => {
  const file = setup('[logging]\nlevel = "debug"\ntrace = ["startup"]\n', {
    '10.toml': '[logging]\ntrace = []\n',
    '20.toml': 'logging.level = "warn"\nresources = { memory_mib = 128 }\n',
  });
  const { values, provenance } = loadConfig({ path: file, env });
  assert.equal(values.logging, { level: 'warn', trace: [] });
  assert.is(values.resources.vcpus, 1, 'an inline table merges too');
  assert.is(values.resources.memory_mib, 128);
  assert.equal(provenance['resources.vcpus'], { kind: 'default' });
  assert.is((provenance['logging.level'] as { line: number }).line, 1);
});

test('a missing base file or config.d means defaults; a base file named with path must exist', () => {
  const file = setup(undefined, { '10.toml': '[resources]\nvcpus = 2\n' });
  const { values, files } = loadConfig({ env: { ...env, HAKO_CONFIG: file } });
  assert.is(values.resources.vcpus, 2, 'drop-ins beside a missing base file still apply');
  assert.equal(files, [path.join(path.dirname(file), 'config.d', '10.toml')]);
  const alone = path.join(tmp, 'alone', 'configuration.toml');
  assert.equal(loadConfig({ env: { ...env, HAKO_CONFIG: alone } }).files, []);
  assert.is(DEFAULT_CONFIG_PATH, '/etc/hako/configuration.toml');
  assert.throws(() => loadConfig({ path: alone, env }), (e: unknown) => e instanceof ConfigError && /alone\/configuration\.toml: no such configuration file$/.test(e.message));
});

test('a config.d that is not a directory is an error', () => {
  const file = setup('');
  const dir = path.join(path.dirname(file), 'config.d');
  fs.rmdirSync(dir);
  fs.writeFileSync(dir, '');
  assert.throws(() => loadConfig({ path: file, env }), (e: unknown) => e instanceof ConfigError && e.file === dir && /cannot list drop-in directory: ENOTDIR/.test(e.message));
});

test('a fragment that does not parse names file, line and key', () => {
  fails('', { '10.toml': '[resources]\n\nvcpus = two\n' }, { file: 'config.d/10.toml', line: 3, key: 'resources.vcpus', message: /:3: resources\.vcpus: invalid TOML: / });
  fails('[resources\nvcpus = 1\n', {}, { file: 'configuration.toml', line: 1, key: undefined, message: /configuration\.toml:1: invalid TOML/ });
  fails('[resources]\nvcpus = 1\nvcpus = 2\n', {}, { file: 'configuration.toml', line: 3, key: 'resources.vcpus', message: /invalid TOML/ });
});

test('unknown keys and tables name file, line and key, and what is known', () => {
  fails('', { '10.toml': '# size\n[resources]\nvcpus = 2\nmemory = 512\n' },
    { file: 'config.d/10.toml', line: 4, key: 'resources.memory', message: /resources\.memory: unknown key \(\[resources\] has vcpus, memory_mib\)/ });
  fails('[hypervisr]\npvm = "on"\n', {}, { file: 'configuration.toml', line: 1, key: 'hypervisr', message: /unknown key \(the top level has the tables hypervisor, guest, / });
  fails('vcpus = 2\n', {}, { file: 'configuration.toml', line: 1, key: 'vcpus', message: /unknown key/ });
  fails('[logging]\nlevel.x = 1\n', {}, { file: 'configuration.toml', line: 2, key: 'logging.level', message: /expected a string, one of "error", .*got a table/ });
  fails('"__proto__" = 1\n', {}, { file: 'configuration.toml', line: 1, key: '__proto__', message: /unknown key/ });
});

test('values of the wrong type or out of range name file, line and key', () => {
  const wrong: [string, string, RegExp][] = [
    ['[resources]\nvcpus = "2"', 'resources.vcpus', /expected an integer, got a string \("2"\)/],
    ['[resources]\nvcpus = 2.0', 'resources.vcpus', /expected an integer, got a float \(2\)/],
    ['[resources]\nvcpus = 0', 'resources.vcpus', /must be at least 1, got 0/],
    ['[resources]\nmemory_mib = 8192', 'resources.memory_mib', /must be from 64 to 4096, got 8192/],
    ['[resources]\nmemory_mib = 99999999999999999999', 'resources.memory_mib', /invalid TOML|must be from 64/],
    ['[guest]\nrng = "yes"', 'guest.rng', /expected a boolean \(true or false\), got a string/],
    ['[guest]\nkernel = 3', 'guest.kernel', /expected a path \(a string\), got an integer \(3\)/],
    ['[guest]\nkernel = "vmlinux"', 'guest.kernel', /must be an absolute path or start with ~\/, got "vmlinux"/],
    ['[hypervisor]\ncpu_template = "fast"', 'hypervisor.cpu_template', /must be one of "auto", "host", "compatible", got "fast"/],
    ['[logging]\ntrace = "startup"', 'logging.trace', /expected an array of strings, got a string/],
    ['[virtiofs]\ncache = "never"', 'virtiofs.cache', /must be one of "none", "auto", "always", got "never"/],
    ['[logging]\ntrace = ["startup", "boot"]', 'logging.trace', /item 1 must be one of "startup", got "boot"/],
    ['[paths]\nstate_dir = 1979-05-27', 'paths.state_dir', /got a date-time/],
  ];
  for (const [text, key, message] of wrong) {
    fails('', { '50-x.toml': `# x\n${text}\n` }, { file: 'config.d/50-x.toml', line: 3, key, message });
  }
  fails('[paths]\n', { '10.toml': 'paths = 3\n' }, { file: 'config.d/10.toml', line: 1, key: 'paths', message: /expected a table \(\[paths\]\), got an integer/ });
});

test('paths: ~/ is the home directory', () => {
  const { values } = loadConfig({ path: setup('[guest]\nkernel = "~/k/vmlinux"\ninitramfs = "/a/../b/initrd"\n'), env });
  assert.is(values.guest.kernel, '/home/h/k/vmlinux');
  assert.is(values.guest.initramfs, '/b/initrd');
});

test('the key scanner: headers, dotted and quoted keys, multi-line values', () => {
  const lines = scanKeyLines([
    '# comment = 1',        // 1
    'a.b = 1',              // 2
    '[t . "q.k"]',          // 3
    "x = '''",              // 4
    'y = 2',                // 5  inside the string
    "'''",                  // 6
    'arr = [',              // 7
    '  "z = 3",',           // 8
    ']',                    // 9
    'inline = { k = 1 }',   // 10
    '[[list]]',             // 11
    "  'lit' = 4",          // 12
  ].join('\n'));
  assert.is(lines.lineOf(['comment']), undefined);
  assert.is(lines.lineOf(['a', 'b']), 2);
  assert.is(lines.lineOf(['a']), 2);
  assert.is(lines.lineOf(['t', 'q.k', 'x']), 4);
  assert.is(lines.lineOf(['t', 'q.k', 'y']), 3, 'not inside a multi-line string: falls back to the table');
  assert.is(lines.lineOf(['t', 'q.k', 'z']), 3);
  assert.is(lines.lineOf(['t', 'q.k', 'inline', 'k']), 10, 'inline tables: the line of the key holding them');
  assert.is(lines.lineOf(['list', 'lit']), 12);
  assert.equal(lines.keyAt(7), ['t', 'q.k', 'arr']);
  assert.equal(lines.keyAt(3), ['t', 'q.k']);
});

test('config show: the merged values as TOML with their provenance', () => {
  const file = setup('[resources]\nvcpus = 2\n', { '10.toml': '\n[logging]\ntrace = ["startup"]\n' });
  const loaded = loadConfig({ path: file, env });
  const text = showConfig(loaded);
  assert.match(text, new RegExp(`^vcpus = 2 +# ${file.replace(/[.]/g, '\\.')}:2$`, 'm'));
  assert.match(text, /^memory_mib = 256 +# default$/m);
  assert.match(text, /^trace = \["startup"\] +# .*config\.d\/10\.toml:3$/m);
  assert.match(text, /^# drop-ins: .*config\.d\/10\.toml$/m);
  // What show prints is a configuration that loads to the same values.
  const again = setup(text);
  assert.equal(loadConfig({ path: again, env }).values, loaded.values);
});

test('the shipped config/configuration.toml is the documented default and loads to the defaults', () => {
  const shipped = path.join(repoRoot, 'config', 'configuration.toml');
  assert.fixture(fs.readFileSync(shipped, 'utf8'), documentedDefaults(), "regenerate with 'hako config default > config/configuration.toml'");
  const file = setup(documentedDefaults());
  assert.equal(loadConfig({ path: file, env }).values, loadConfig({ path: setup(''), env }).values);
  // Every key is documented, and uncommenting every line gives valid values: the defaults.
  for (const { key } of leaves()) assert.match(documentedDefaults(), new RegExp(`^# ${key.at(-1)} = `, 'm'));
  const uncommented = setup(documentedDefaults().replace(/^# (\w+ = )/gm, '$1'));
  const { values, provenance } = loadConfig({ path: uncommented, env });
  assert.equal(values, loadConfig({ path: setup(''), env }).values);
  assert.is(provenance['paths.state_dir'].kind, 'file');
});

function hako(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, HAKO_CONFIG: path.join(tmp, 'none.toml') } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function rejects(args: string[], message: RegExp) {
  const { code, stderr } = hako(...args);
  assert.is(code, 2, `exit code for ${args.join(' ')}: ${stderr}`);
  assert.match(stderr, message);
  assert.is(stderr.trim().split('\n').length, 1, `one line: ${stderr}`);
}

test('CLI: config show and default', () => {
  const file = setup('[resources]\nmemory_mib = 512\n');
  const { code, stdout } = hako('config', 'show', '--config', file);
  assert.is(code, 0);
  assert.match(stdout, /^memory_mib = 512 +# .*configuration\.toml:2$/m);
  const dflt = hako('config', 'default');
  assert.is(dflt.code, 0);
  assert.is(dflt.stdout, documentedDefaults());
  assert.match(hako('config', 'show', '--help').stdout, /Usage: hako config show/);
  assert.match(hako('config', '--help').stdout, /Usage: hako config <show\|default>/);
});

test('CLI: unknown flags, bad values and bad files give exit 2 and one line', () => {
  rejects(['config', 'show', '--confg', 'x'], /hako config: Unknown option '--confg'.*'hako config show --help'/);
  rejects(['config', 'show', '--config'], /--config/);
  rejects(['config', 'show', '--config', ''], /--config expects a file path, got ""/);
  rejects(['config', 'show', 'extra'], /Unexpected argument 'extra'/);
  rejects(['config'], /missing subcommand: show or default/);
  rejects(['config', 'shwo'], /unknown subcommand "shwo"/);
  rejects(['config', 'show', '--config', path.join(tmp, 'nope.toml')], /nope\.toml: no such configuration file/);
  rejects(['config', 'show', '--config', setup('[resources]\nvcpus = -1\n')], /configuration\.toml:2: resources\.vcpus: must be at least 1, got -1/);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
