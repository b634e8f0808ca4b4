// What the shim takes from an OCI bundle's config.json: the process (args,
// env, cwd, user), the root path, and the pod annotation that groups
// containers into one shim.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { groupId, readBundle } from '../../host/shim/bundle.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-shim-bundle-'));
test.after(() => fs.rmSync(scratch, { recursive: true, force: true }));

function bundle(name: string, spec: object): string {
  const dir = path.join(scratch, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
  return dir;
}

test('the process of a config.json as ctr writes it', () => {
  const dir = bundle('ctr', {
    process: { args: ['sh', '-c', 'echo $A'], env: ['PATH=/bin', 'A=b=c'], cwd: '/tmp', user: { uid: 1000, gid: 100 }, terminal: true },
    root: { path: 'rootfs', readonly: true },
    hostname: 'box',
  });
  assert.equal(readBundle(dir, true), {
    process: { args: ['sh', '-c', 'echo $A'], env: { PATH: '/bin', A: 'b=c' }, cwd: '/tmp', tty: true, user: { uid: 1000, gid: 100 } },
    rootPath: 'rootfs', rootReadOnly: true, hostname: 'box', volumes: [], skippedMounts: [], annotations: {},
  });
});

test("bind mounts of host directories become volumes, host files are skipped; the spec's memory limit is kept", () => {
  const data = path.join(scratch, 'data');
  fs.mkdirSync(data);
  fs.writeFileSync(path.join(scratch, 'resolv.conf'), '');
  const spec = readBundle(bundle('mounts', {
    process: { args: ['x'] },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/data', type: 'bind', source: data, options: ['rbind', 'ro'] },
      { destination: '/etc/resolv.conf', type: 'bind', source: path.join(scratch, 'resolv.conf'), options: ['rbind'] },
    ],
    linux: { resources: { memory: { limit: 64 << 20 } } },
  }), false);
  assert.equal(spec.volumes, [{ source: data, destination: '/data', readOnly: true }]);
  assert.equal(spec.skippedMounts.length, 1);
  assert.match(spec.skippedMounts[0]!, /resolv\.conf on \/etc\/resolv\.conf: only host directories/);
  assert.is(spec.memoryLimitBytes, 64 << 20);
});

test('a missing or unreadable config.json, or one without args, is INVALID_ARGUMENT naming the file', () => {
  assert.throws(() => readBundle(path.join(scratch, 'absent'), false), /cannot read the OCI spec .*absent\/config\.json/);
  const dir = bundle('noargs', { process: { args: [] } });
  assert.throws(() => readBundle(dir, false), /config\.json: process\.args must be a non-empty array/);
});

test("containers of a pod share a group: CRI's sandbox id or hako's group annotation; otherwise their own id", () => {
  assert.is(groupId(bundle('cri', { process: { args: ['x'] }, annotations: { 'io.kubernetes.cri.sandbox-id': 'pod9' } }), 'c1'), 'pod9');
  assert.is(groupId(bundle('grp', { process: { args: ['x'] }, annotations: { 'io.containerd.hako.v2.group': 'g' } }), 'c2'), 'g');
  assert.is(groupId(bundle('alone', { process: { args: ['x'] } }), 'c3'), 'c3');
  assert.is(groupId(path.join(scratch, 'absent'), 'c4'), 'c4');
});

test.run();
