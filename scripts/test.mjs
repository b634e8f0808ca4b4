#!/usr/bin/env node
// Runs the compiled uvu suites, one process per test file so a crash or a
// hung VM in one file cannot take the others with it, and ends with the
// summary line CI reads: `N passed, N failed`. VM files run two at a time
// (HAKO_TEST_JOBS overrides): each keeps one core busy with guest kernel code,
// so on the 2-core CI machine this halves the suite; their output is printed
// per file as each ends.
//   node scripts/test.mjs            unit, then VM tests
//   node scripts/test.mjs unit|vm    one group
//   node scripts/test.mjs FILTER     files whose name contains FILTER
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const groups = ['unit', 'vm'];
const arg = process.argv[2];
const FILE_TIMEOUT_MS = 20 * 60 * 1000;

function testFiles(group) {
  const dir = path.join(root, 'dist', 'test', group);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort().map((f) => path.join(dir, f));
}

const files = (groups.includes(arg) ? [arg] : groups).flatMap(testFiles)
  .filter((f) => !arg || groups.includes(arg) || f.includes(arg));

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
const vmJobs = Math.max(1, Number(process.env.HAKO_TEST_JOBS) || Math.min(2, os.availableParallelism()));
// The longest VM files first, so the two lanes end close together.
const SLOW_FIRST = ['container.test.js', 'cli-run.test.js'];

function runFile(file, live) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const collect = (stream, sink) => stream.on('data', (d) => { out += d; if (live) sink.write(d); });
    collect(child.stdout, process.stdout);
    collect(child.stderr, process.stderr);
    const timer = setTimeout(() => {
      out += `\n${path.basename(file)}: timed out after ${FILE_TIMEOUT_MS / 60000} minutes\n`;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = strip(out);
      const num = (label) => Number(text.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? NaN);
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped') || 0;
      let failed = total - passed - skipped;
      if (Number.isNaN(total) || Number.isNaN(passed)) failed = 1; // crashed before uvu reported
      else if (code !== 0 && failed === 0) failed = 1;             // uvu counted nothing wrong but the process failed
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (!live) process.stdout.write(out);
      console.log(`# ${path.relative(root, file)}: ${Number.isNaN(passed) ? 0 : passed} passed, ${failed} failed` +
        `${skipped ? `, ${skipped} skipped` : ''} (${secs}s${signal ? `, ${signal}` : ''})`);
      resolve({ passed: Number.isNaN(passed) ? 0 : passed, failed, skipped });
    });
  });
}

let passed = 0, failed = 0, skipped = 0;
if (files.length === 0) {
  console.log(`no test files match ${arg ?? '(all)'}; did the build run?`);
  failed = 1;
}
const add = (r) => { passed += r.passed; failed += r.failed; skipped += r.skipped; };
const isVm = (f) => f.includes(`${path.sep}vm${path.sep}`);
for (const f of files.filter((f) => !isVm(f))) add(await runFile(f, true));
const vmFiles = files.filter(isVm).sort((a, b) =>
  Number(SLOW_FIRST.includes(path.basename(b))) - Number(SLOW_FIRST.includes(path.basename(a))));
const lanes = Math.min(vmJobs, vmFiles.length);
await Promise.all(Array.from({ length: lanes }, async () => {
  for (let f = vmFiles.shift(); f; f = vmFiles.shift()) add(await runFile(f, lanes === 1));
}));
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed > 0 ? 1 : 0;
