// The shim's command line as containerd 1.6 writes it (runtime/v2/binary.go,
// shim/util.go), and where a pod's shim listens.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseFlags } from '../../host/shim/flags.js';
import { shimSocketPath } from '../../host/shim/socket.js';

test('start: -namespace -address -publish-binary then -id, -debug and the action', () => {
  const f = parseFlags(['-namespace', 'k8s.io', '-address', '/run/containerd/containerd.sock', '-publish-binary', '/usr/bin/containerd',
    '-id', 'abc', '-debug', 'start']);
  assert.equal(f, {
    namespace: 'k8s.io', address: '/run/containerd/containerd.sock', publishBinary: '/usr/bin/containerd', id: 'abc',
    bundle: '', socket: '', debug: true, action: 'start',
  });
});

test('delete: -bundle, and -name=value spelling', () => {
  const f = parseFlags(['-namespace=default', '--address', '/a.sock', '-id', 'x', '-bundle', '/b/x', 'delete']);
  assert.is(f.namespace, 'default');
  assert.is(f.address, '/a.sock');
  assert.is(f.bundle, '/b/x');
  assert.is(f.action, 'delete');
  assert.is(f.debug, false);
});

test('an unknown flag or a missing value is an error naming it', () => {
  assert.throws(() => parseFlags(['-frobnicate', '1', 'start']), /unknown flag -frobnicate/);
  assert.throws(() => parseFlags(['-id']), /flag -id needs a value/);
});

test('one socket per containerd, namespace and pod, under the state directory', () => {
  const env = { HAKO_STATE_DIR: '/run/hako-test' };
  const a = shimSocketPath('/run/containerd/containerd.sock', 'default', 'pod1', env);
  assert.match(a, /^\/run\/hako-test\/shim\/[0-9a-f]{64}$/);
  assert.is(shimSocketPath('/run/containerd/containerd.sock', 'default', 'pod1', env), a);
  assert.is.not(shimSocketPath('/run/containerd/containerd.sock', 'other', 'pod1', env), a);
  assert.is.not(shimSocketPath('/run/containerd/containerd.sock', 'default', 'pod2', env), a);
  assert.ok(a.length < 108, 'fits sockaddr_un');
});

test.run();
