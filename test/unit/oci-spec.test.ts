// The OCI config.json hako hands the agent: defaults, each variable once, and
// clear errors for bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkId, containerSpec, processSpec } from '../../host/sandbox/oci-spec.js';

type Proc = { env: string[]; terminal: boolean; cwd: string; args: string[] };

test('PATH gets a default unless given; TERM only with a tty; each variable once', () => {
  const plain = processSpec({ args: ['true'], env: { A: '1' } }) as Proc;
  assert.equal(plain.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=1']);
  const image = processSpec({ args: ['true'], env: { PATH: '/opt/bin', TERM: 'dumb' }, tty: true }) as Proc;
  assert.equal(image.env, ['PATH=/opt/bin', 'TERM=dumb']);
  const tty = processSpec({ args: ['sh'], tty: true }) as Proc;
  assert.ok(tty.terminal && tty.env.includes('TERM=xterm'));
  assert.is(tty.cwd, '/');
});

test('bad args, env, cwd, user, id and memory limit are refused, naming the field', () => {
  assert.throws(() => processSpec({ args: [] }), /args must be a non-empty array/);
  assert.throws(() => processSpec({ args: ['a\0b'] }), /without NUL bytes/);
  assert.throws(() => processSpec({ args: ['x'], env: { 'A=B': '1' } }), /env: "A=B" is not a valid variable name/);
  assert.throws(() => processSpec({ args: ['x'], cwd: 'tmp' }), /cwd must be an absolute path/);
  assert.throws(() => processSpec({ args: ['x'], user: { uid: -1, gid: 0 } }), /user.uid must be an integer/);
  assert.throws(() => checkId('../x', 'container id'), /container id must match/);
  assert.throws(() => containerSpec({ id: 'c', args: ['x'], memoryLimitBytes: 10 }), /memoryLimitBytes must be an integer of at least 4096/);
});

test('a container spec: own pid/ipc/uts/mount/cgroup namespaces, the VM network, a memory limit when asked', () => {
  const spec = containerSpec({ id: 'web', args: ['true'], memoryLimitBytes: 1 << 24 }) as {
    hostname: string; linux: { namespaces: { type: string }[]; resources?: { memory: { limit: number } } };
  };
  assert.is(spec.hostname, 'web');
  assert.equal(spec.linux.namespaces.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'cgroup']);
  assert.is(spec.linux.resources?.memory.limit, 1 << 24);
});


test('volumes become bind mounts of their share paths, read-only when asked; bad destinations are refused', () => {
  const spec = containerSpec({
    id: 'web', args: ['true'],
    volumes: [{ source: '/srv/data', destination: '/data' }, { source: '/srv/conf', destination: '/etc/app', readOnly: true }],
  }, ['/run/hako-shared/web/volumes/0', '/run/hako-shared/web/volumes/1']) as { mounts: Array<{ destination: string; source: string; options?: string[] }> };
  const binds = spec.mounts.filter((m) => m.source.startsWith('/run/hako-shared/'));
  assert.equal(binds.map((m) => [m.destination, m.source, m.options!.at(-1)]), [
    ['/data', '/run/hako-shared/web/volumes/0', 'rw'],
    ['/etc/app', '/run/hako-shared/web/volumes/1', 'ro'],
  ]);
  for (const destination of ['data', '/', '/./', '', '/a\0b']) {
    assert.throws(() => containerSpec({ id: 'c', args: ['x'], volumes: [{ source: '/x', destination }] }),
      /volumes\[0\]\.destination must be an absolute path other than \//, JSON.stringify(destination));
  }
});

test.run();
