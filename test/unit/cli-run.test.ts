// `hako run`, `ps`, `exec`, `kill` and `rm` without KVM: where options end and
// the command begins, bad input rejected with exit code 2 before any VM work,
// and the state records that let one hako process find another's sandbox.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../host/native.js';
import { envList, envOptions, splitOperands, stateDir, volumeOptions } from '../../host/cli/run-args.js';
import { resolveUser } from '../../host/image/users.js';
import { findSandbox, listSandboxes, newRecord, processStartTime, readRecord, writeRecord, type SandboxRecord } from '../../host/sandbox/state.js';
import { loadConfig } from '../../host/config/load.js';

const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-cli-run-'));
const state = path.join(tmp, 'state');
const children: ChildProcess[] = [];

function hako(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, HAKO_STATE_DIR: state } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function rejects(args: string[], message: RegExp, code = 2) {
  const r = hako(...args);
  assert.is(r.code, code, `exit code for ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.is(r.stderr.trim().split('\n').length, 1, `one line, no stack trace: ${r.stderr}`);
}

/** A sandbox directory with a record for process `pid`. */
function fakeSandbox(id: string, pid: number, fields: Partial<SandboxRecord> = {}): string {
  const dir = path.join(state, id);
  fs.mkdirSync(dir, { recursive: true });
  writeRecord(dir, {
    ...newRecord(dir, { containerId: id, image: 'busybox (bundled)', command: ['sleep', '1000'], env: {} }),
    pid,
    pidStartTime: processStartTime(pid) ?? '1',
    ...fields,
  });
  return dir;
}

const OPTIONS = {
  tty: { type: 'boolean', short: 't' },
  interactive: { type: 'boolean', short: 'i' },
  env: { type: 'string', short: 'e' },
  memory: { type: 'string' },
} as const;

test('options end at the first operand or at --, and option values are not operands', () => {
  assert.equal(splitOperands(['-it', 'ls', '-l'], OPTIONS), { options: ['-it'], operands: ['ls', '-l'] });
  assert.equal(splitOperands(['--memory', '512', 'echo', '--memory'], OPTIONS), { options: ['--memory', '512'], operands: ['echo', '--memory'] });
  assert.equal(splitOperands(['--memory=512', '-e', 'A=1', '-eB=2', 'sh'], OPTIONS), { options: ['--memory=512', '-e', 'A=1', '-eB=2'], operands: ['sh'] });
  assert.equal(splitOperands(['-te', 'A=1', 'sh'], OPTIONS), { options: ['-te', 'A=1'], operands: ['sh'] });
  assert.equal(splitOperands(['-t', '--', '-x', '--'], OPTIONS), { options: ['-t'], operands: ['-x', '--'] });
  assert.equal(splitOperands(['-t', '--bogus'], OPTIONS), { options: ['-t', '--bogus'], operands: [] });
  assert.equal(splitOperands(['-'], OPTIONS), { options: [], operands: ['-'] });
});

test('-e takes NAME=VALUE or NAME (our value); image Env lists become maps', () => {
  assert.equal(envOptions(['A=1', 'B==x', 'C=', 'HOME_X', 'MISSING'], { HOME_X: '/h' }), { A: '1', B: '=x', C: '', HOME_X: '/h' });
  assert.throws(() => envOptions(['=1']), /-e expects NAME=VALUE or NAME, got "=1"/);
  assert.throws(() => envOptions(['']), /got ""/);
  assert.equal(envList(['PATH=/bin', 'A=1=2', 'junk', 'A=3']), { PATH: '/bin', A: '3' });
});

test('-v HOST:DIR[:ro|:rw]: HOST made absolute, DIR absolute, anything else refused', () => {
  assert.equal(volumeOptions(['/srv:/data', 'rel:/etc/app:ro', '/a:/b:rw']), [
    { source: '/srv', destination: '/data', readOnly: false },
    { source: `${process.cwd()}/rel`, destination: '/etc/app', readOnly: true },
    { source: '/a', destination: '/b', readOnly: false },
  ]);
  for (const bad of ['/srv', '/srv:data', '/srv:/data:rx', ':/data', '/a:/b:ro:x']) {
    assert.throws(() => volumeOptions([bad]), /-v expects HOST:DIR\[:ro\|:rw\] with DIR absolute/, bad);
  }
});

test('users: names and numbers resolved through the root file system\'s passwd and group, as Docker does', () => {
  const db = {
    passwd: 'root:x:0:0:root:/root:/bin/sh\nnginx:x:101:102::/:/sbin/nologin\nbroken\n',
    group: 'root:x:0:\nnginx:x:102:\nstaff:x:50:nginx\n',
  };
  assert.equal(resolveUser('nginx', db, 'u'), { uid: 101, gid: 102 }, "a name takes its passwd entry's group");
  assert.equal(resolveUser('nginx:staff', db, 'u'), { uid: 101, gid: 50 });
  assert.equal(resolveUser('101', db, 'u'), { uid: 101, gid: 102 }, 'a known uid also takes its group');
  assert.equal(resolveUser('1000', db, 'u'), { uid: 1000, gid: 0 }, 'an unknown uid gets group 0');
  assert.equal(resolveUser('1000:100', db, 'u'), { uid: 1000, gid: 100 });
  assert.equal(resolveUser('root', db, 'u'), { uid: 0, gid: 0 });
  assert.throws(() => resolveUser('www', db, "image x: User"), /image x: User: no user 'www' in the root file system's \/etc\/passwd/);
  assert.throws(() => resolveUser('nginx:wheel', db, 'u'), /no group 'wheel'/);
  assert.throws(() => resolveUser('broken', db, 'u'), /no user 'broken'/);
  assert.throws(() => resolveUser('4294967295', db, 'u'), /user id 4294967295 is above 4294967294/);
  assert.throws(() => resolveUser('1:', db, 'u'), /must be USER\[:GROUP\].*got "1:"/);
  assert.throws(() => resolveUser('', db, 'u'), /got ""/);
});

test('the state directory: $HAKO_STATE_DIR over paths.state_dir', () => {
  const config = loadConfig({ env: {} });
  assert.is(stateDir(config, {}), config.values.paths.state_dir);
  assert.is(stateDir(config, { HAKO_STATE_DIR: '/x' }), '/x');
});

test('--config FILE: paths.state_dir is where ps looks, unless $HAKO_STATE_DIR says otherwise', () => {
  const other = path.join(tmp, 'other-state');
  fs.mkdirSync(path.join(other, 'cc44'), { recursive: true });
  const file = path.join(tmp, 'configuration.toml');
  fs.writeFileSync(file, `[paths]\nstate_dir = "${other}"\n`);
  const env = { ...process.env };
  delete env.HAKO_STATE_DIR;
  const r = spawnSync(process.execPath, [cli, 'ps', '-q', '--config', file], { encoding: 'utf8', env });
  assert.is(r.stdout, 'cc44\n', r.stderr);
  assert.is(hako('ps', '-q', '--config', file).stdout, '');
});

test('bad input to run and exec: exit 2 naming the argument, before any VM work', () => {
  rejects(['run', '--bogus', 'true'], /Unknown option '--bogus'/);
  rejects(['run'], /missing command/);
  rejects(['run', '--memory', '63', 'true'], /--memory must be from 64 to 4096 MiB, got 63/);
  rejects(['run', '--memory', '1g', 'true'], /--memory expects a whole number, got "1g"/);
  rejects(['run', '--vcpus', '0', 'true'], /--vcpus must be at least 1, got 0/);
  rejects(['run', '--image', path.join(tmp, 'nope'), 'true'], /image '.*nope': no such OCI layout/);
  rejects(['run', '--rootfs', path.join(tmp, 'nope'), 'true'], /--rootfs expects a directory, got ".*nope"/);
  rejects(['run', '--rootfs', tmp, '--image', tmp, 'true'], /--image and --rootfs both/);
  rejects(['run', '-e', '=1', 'true'], /-e expects NAME=VALUE/);
  rejects(['run', '-u', 'bob', 'true'], /--user: no user 'bob' in the root file system's \/etc\/passwd/);
  rejects(['run', '-u', '1:', 'true'], /--user must be USER\[:GROUP\]/);
  rejects(['run', '-v', '/srv:data', 'true'], /-v expects HOST:DIR/);
  rejects(['run', '-w', 'tmp', 'true'], /--workdir expects an absolute path, got "tmp"/);
  rejects(['run', '--config', path.join(tmp, 'nope.toml'), 'true'], /nope\.toml: no such configuration file/);
  rejects(['exec'], /missing sandbox ID and command/);
  rejects(['exec', 'abc'], /missing command/);
  rejects(['exec', '-x', 'abc', 'ls'], /Unknown option '-x'/);
  rejects(['exec', 'nosuch', 'ls'], /no sandbox "nosuch" in .*state/);
  rejects(['kill'], /expected ID \[SIGNAL\]/);
  rejects(['kill', 'a', 'b', 'c'], /expected ID \[SIGNAL\], got 3 operands/);
  rejects(['kill', 'nosuch'], /no sandbox "nosuch"/);
  rejects(['kill', 'nosuch', 'SIGFOO'], /signal must be a signal name/);
  rejects(['rm'], /missing sandbox ID/);
  rejects(['rm', '../etc'], /sandbox id must be letters, digits/);
  rejects(['ps', 'extra'], /Unexpected argument 'extra'/);
});

test('--help on every command exits 0 with its usage', () => {
  for (const name of ['run', 'exec', 'ps', 'kill', 'rm']) {
    const { code, stdout } = hako(name, '--help');
    assert.is(code, 0, name);
    assert.match(stdout, new RegExp(`^Usage: hako ${name} `), name);
  }
  assert.match(hako('--help').stdout, /\n {2}run {8}run a container/);
});

test('records: written atomically, read back checked, a malformed one named', () => {
  const dir = fakeSandbox('rec1', process.pid);
  const record = readRecord(dir)!;
  assert.is(record.id, 'rec1');
  assert.is(record.pid, process.pid);
  assert.is(record.pidStartTime, processStartTime(process.pid));
  assert.ok(!Number.isNaN(Date.parse(record.created)));
  assert.equal(fs.readdirSync(dir), ['sandbox.json']);
  assert.is(readRecord(path.join(state, 'none')), undefined);
  fs.writeFileSync(path.join(dir, 'sandbox.json'), '{"id": "other"}');
  assert.throws(() => readRecord(dir), /rec1\/sandbox\.json: not a sandbox record/);
  fs.writeFileSync(path.join(dir, 'sandbox.json'), '{');
  assert.throws(() => readRecord(dir), /not valid JSON/);
  fs.rmSync(dir, { recursive: true });
});

test('running, dead and unknown sandboxes; ids by unique prefix', () => {
  const sleeper = spawn('sleep', ['1000'], { stdio: 'ignore' });
  children.push(sleeper);
  fakeSandbox('aa11', sleeper.pid!);
  fakeSandbox('aa22', sleeper.pid!, { pidStartTime: '1' }); // the same pid, but a different process: dead
  fs.mkdirSync(path.join(state, 'bb33'));
  const byId = Object.fromEntries(listSandboxes(state).map((e) => [e.id, e]));
  assert.is(byId.aa11!.running, true);
  assert.is(byId.aa22!.running, false);
  assert.is(byId.bb33!.running, false);
  assert.is(byId.bb33!.record, undefined);
  assert.is(findSandbox(state, 'aa1').id, 'aa11');
  assert.is(findSandbox(state, 'b').id, 'bb33');
  assert.throws(() => findSandbox(state, 'aa'), /ambiguous: it starts aa11, aa22/);
  assert.equal(listSandboxes(path.join(tmp, 'missing')), []);

  const { code, stdout } = hako('ps');
  assert.is(code, 0);
  const lines = stdout.trim().split('\n');
  assert.match(lines[0]!, /^ID\s+STATUS\s+CREATED\s+IMAGE\s+COMMAND$/);
  assert.match(stdout, new RegExp(`aa11\\s+running \\(pid ${sleeper.pid}\\)\\s+\\S+Z\\s+busybox \\(bundled\\)\\s+sleep 1000`));
  assert.match(stdout, /aa22\s+dead\s/);
  assert.match(stdout, /bb33\s+unknown/);
  assert.equal(hako('ps', '-q').stdout.trim().split('\n').sort(), ['aa11', 'aa22', 'bb33']);
});

test('rm removes dead sandboxes, refuses running and unknown ones without --force; exec and kill need a running one', () => {
  rejects(['rm', 'aa11'], /sandbox aa11 is running \(pid \d+\); stop it with 'hako kill aa11', or use --force/, 1);
  rejects(['rm', 'bb33'], /sandbox bb33 has no sandbox\.json/, 1);
  rejects(['rm', 'aa22', 'aa11'], /aa11 is running/, 1);
  assert.ok(fs.existsSync(path.join(state, 'aa22')), 'nothing removed when one ID is refused');
  rejects(['exec', 'aa22', 'ls'], /sandbox aa22 is not running .*'hako rm aa22'/, 1);
  rejects(['kill', 'aa22'], /sandbox aa22 is not running/, 1);
  rejects(['exec', 'bb33', 'ls'], /sandbox bb33 has no sandbox\.json/, 1);
  const r = hako('rm', 'aa22');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'aa22\n');
  assert.is(hako('rm', '--force', 'bb33').code, 0);
  assert.equal(fs.readdirSync(state), ['aa11']);
});

test.after(() => {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});
test.run();
