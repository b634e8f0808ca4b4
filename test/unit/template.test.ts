// The VM template cache without KVM: the key covers every input, the cache
// root follows the environment, listing and removal, and bad CLI input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../host/native.js';
import { listTemplates, removeAllTemplates, removeTemplate, templateKey, templateRoot, type TemplateInputs } from '../../host/template/cache.js';
import { cloneLine, newCloneIdentity, unixNanoseconds } from '../../host/template/clone.js';

const inputs: TemplateInputs = {
  kernelSha256: 'a'.repeat(64), initrdSha256: 'b'.repeat(64), cmdline: 'console=ttyS0 hako.template=1',
  vcpus: 1, memoryMiB: 256, cpuTemplate: 'compatible', devices: ['rng', 'vsock'],
};

test('the key is 16 hex digits, stable, and changes when any input or the format version changes', () => {
  const key = templateKey(inputs);
  assert.match(key, /^[0-9a-f]{16}$/);
  assert.is(templateKey({ ...inputs }), key);
  const variants: TemplateInputs[] = [
    { ...inputs, kernelSha256: 'c'.repeat(64) },
    { ...inputs, initrdSha256: 'c'.repeat(64) },
    { ...inputs, cmdline: `${inputs.cmdline} quiet` },
    { ...inputs, vcpus: 2 },
    { ...inputs, memoryMiB: 512 },
    { ...inputs, cpuTemplate: 'host' },
    { ...inputs, devices: ['rng'] },
  ];
  const keys = new Set([key, ...variants.map((v) => templateKey(v)), templateKey(inputs, 999)]);
  assert.is(keys.size, variants.length + 2);
});

test('the cache root: HAKO_CACHE_DIR, else XDG_CACHE_HOME/hako, else ~/.cache/hako', () => {
  assert.is(templateRoot({ HAKO_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' }), '/c/templates');
  assert.is(templateRoot({ XDG_CACHE_HOME: '/x' }), '/x/hako/templates');
  assert.is(templateRoot({}), path.join(os.homedir(), '.cache', 'hako', 'templates'));
});

test('the clone line carries the time in nanoseconds, the hostname and the seed', () => {
  const ns = 1_700_000_000_400_000_123n;
  assert.is(cloneLine({ hostname: 'hako-1', seed: 'ab' }, ns), 'hako-clone 1700000000400000123 hako-1 ab\n');
  assert.is(cloneLine({ hostname: 'hako-1', seed: 'ab' }, ns, 'idle'), 'hako-clone 1700000000400000123 hako-1 ab idle\n');
  assert.throws(() => cloneLine({ hostname: 'hako-1', seed: 'ab' }, 0n, 'idle check'), /init mode must be a lowercase word/);
});

test('a new clone identity has a 32-byte seed and the host time in nanoseconds', () => {
  const { hostname, seed } = newCloneIdentity();
  assert.match(hostname, /^hako-[0-9a-f]{8}$/);
  assert.match(seed, /^[0-9a-f]{64}$/);
  assert.is.not(newCloneIdentity().seed, seed);
  assert.ok(Math.abs(Number(unixNanoseconds() / 1_000_000n) - Date.now()) < 1000);
});

test('list and remove: damaged entries are listed as unusable, leftovers are skipped, then removed by --all', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-templates-'));
  fs.mkdirSync(path.join(root, '0123456789abcdef'));
  fs.writeFileSync(path.join(root, '0123456789abcdef', 'manifest.json'), '{}');
  fs.mkdirSync(path.join(root, 'fedcba9876543210.tmp-123'));
  const listed = listTemplates(root);
  assert.equal(listed.map((t) => t.key), ['0123456789abcdef']);
  assert.match(listed[0]!.problem ?? '', /format version/);
  assert.throws(() => removeTemplate(root, 'fedcba9876543210'), /no template fedcba9876543210/);
  assert.throws(() => removeTemplate(root, '../etc'), /16 hex digits/);
  assert.equal(removeAllTemplates(root), ['0123456789abcdef']);
  assert.equal(fs.readdirSync(root), []);
  assert.equal(listTemplates(path.join(root, 'missing')), []);
  fs.rmSync(root, { recursive: true });
});

const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');

test('bad input to hako template: one line naming it, exit 2', () => {
  const env = { ...process.env, HAKO_CACHE_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'hako-cache-')) };
  const cases: [string[], RegExp][] = [
    [['template'], /missing subcommand: create, ls or rm/],
    [['template', 'make'], /unknown subcommand "make"/],
    [['template', 'rm'], /give the keys of the templates to remove, or --all/],
    [['template', 'rm', 'zz'], /template key must be 16 hex digits, .*got "zz"|got "zz"/],
    [['template', 'rm', '0123456789abcdef'], /no template 0123456789abcdef/],
    [['template', 'rm', '--all', '0123456789abcdef'], /not both/],
    [['template', 'create', '--vcpus', 'two'], /--vcpus expects a whole number, got "two"/],
    [['template', 'ls', 'extra'], /Unexpected argument 'extra'/],
    [['template', 'create', '--cpus', '2'], /Unknown option '--cpus'/],
  ];
  for (const [args, message] of cases) {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env });
    assert.is(r.status, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
  const help = spawnSync(process.execPath, [cli, 'template', 'create', '--help'], { encoding: 'utf8', env });
  assert.is(help.status, 0);
  assert.match(help.stdout, /Usage: hako template create/);
  fs.rmSync(env.HAKO_CACHE_DIR, { recursive: true });
});

test.run();
