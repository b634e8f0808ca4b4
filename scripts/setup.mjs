#!/usr/bin/env node
// Brings a checkout up to date before `npm start`, `npm test` and `npm run bench`:
// Debian packages, npm packages, the addon, the Wasm, the TypeScript and the
// guest. Each step is skipped when the hash of its inputs matches the stamp
// left by its last successful run, so repeated runs take well under a second.
// Plain Node with no dependencies: it runs before node_modules exists.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stampDir = path.join(root, 'build', 'stamps');
const args = new Set(process.argv.slice(2));

function filesUnder(rel, filter = () => true) {
  const abs = path.join(root, rel);
  if (!fs.existsSync(abs)) return [];
  if (fs.statSync(abs).isFile()) return [rel];
  return fs.readdirSync(abs, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(root, path.join(d.parentPath ?? d.path, d.name)))
    .filter(filter)
    .sort();
}

function hashOf(files) {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f + '\0');
    h.update(fs.readFileSync(path.join(root, f)));
  }
  return h.digest('hex');
}

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.error) throw new Error(`hako setup: cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    console.error(`hako setup: '${[cmd, ...argv].join(' ')}' failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
  return r;
}

/** Runs `build` unless the stamp for `name` matches the hash of `inputs` and every output exists. */
function step(name, inputs, outputs, build) {
  const hash = hashOf(inputs);
  const stamp = path.join(stampDir, name);
  const fresh = fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === hash
    && outputs.every((o) => fs.existsSync(path.join(root, o)));
  if (fresh) return;
  console.error(`hako setup: ${name}`);
  build();
  fs.mkdirSync(stampDir, { recursive: true });
  fs.writeFileSync(stamp, hash);
}

const bin = (name) => path.join(root, 'node_modules', '.bin', name);

run('bash', ['scripts/install-deps.sh']);

step('npm packages', ['package.json', 'package-lock.json'], ['node_modules/.bin/tsc'], () => {
  run('npm', ['ci', '--no-audit', '--no-fund']);
});

step('native addon', ['CMakeLists.txt', ...filesUnder('native')], ['build/native/Release/hako.node'], () => {
  run(bin('cmake-js'), ['compile', '--out', 'build/native', '--directory', root]);
});

step('wasm', ['asconfig.json', ...filesUnder('assembly')], ['build/wasm/hako.wasm'], () => {
  run(bin('asc'), ['--config', 'asconfig.json', '--target', 'release']);
});

const tsInputs = ['tsconfig.json', ...['host', 'test', 'bench'].flatMap((d) => filesUnder(d, (f) => f.endsWith('.ts')))];
step('typescript', tsInputs, ['dist/host/cli/main.js'], () => {
  fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
  run(bin('tsc'), ['-p', '.']);
});

// containerd finds runtime io.containerd.hako.v2 as containerd-shim-hako-v2 on its PATH: a launcher for this checkout.
const shimLauncher = '/usr/local/bin/containerd-shim-hako-v2';
const launcherText = `#!/bin/sh\n# containerd's hako runtime (io.containerd.hako.v2), installed by ${path.join(root, 'scripts', 'setup.mjs')}\n`
  + `exec ${process.execPath} ${path.join(root, 'dist', 'host', 'shim', 'main.js')} "$@"\n`;
if (!fs.existsSync(shimLauncher) || fs.readFileSync(shimLauncher, 'utf8') !== launcherText) {
  if (process.getuid?.() === 0) {
    console.error(`hako setup: installing ${shimLauncher}`);
    fs.writeFileSync(shimLauncher, launcherText, { mode: 0o755 });
  } else {
    console.error(`hako setup: ${shimLauncher} is missing or points elsewhere; run setup as root to install it`);
  }
}

// The benchmark probe guest: build.sh caches it by content; assembling takes milliseconds.
run('bash', ['guest/probe/build.sh'], { stdio: ['ignore', 'ignore', 'inherit'] });

if (!args.has('--no-guest')) {
  // guest/build.sh keeps its own content-addressed cache outside the checkout
  // and prints where the artifacts are as its last line.
  const r = run('bash', ['guest/build.sh'], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  const guest = JSON.parse(last);
  fs.mkdirSync(path.join(root, 'build'), { recursive: true });
  fs.writeFileSync(path.join(root, 'build', 'guest.json'), JSON.stringify(guest, null, 2) + '\n');
}
