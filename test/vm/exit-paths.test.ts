// Every way `hako boot` ends, with its exit code and its one line on stderr,
// checked on tiny hand-made guests (tiny-guest.ts): a Linux boot takes
// minutes on PVM hosts, these take a fraction of a second.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultTemplate } from '../../host/cpu/template.js';
import { native, repoRoot } from '../../host/native.js';
import { isPvmHost } from '../../host/vmm/kvm.js';
import { Vm } from '../../host/vmm/vm.js';
import {
  COM1, ENTRY, I8042_COMMAND, I8042_RESET, RTC_DATA, RTC_INDEX, SCRATCH, exitWith, print, writeTinyGuest, x86,
} from './tiny-guest.js';

const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-exit-paths-'));
const RUN_TIMEOUT_MS = 10_000;
const hex = (n: number) => `0x${n.toString(16)}`;

const HELLO = 'hello from a tiny guest\n';
const helloGuest = writeTinyGuest(tmp, 'hello', [...print(HELLO), ...exitWith(0)]);

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** Runs hako through this command, which must exec "$0" "$@" (e.g. `unshare -m sh -c ...`). */
  wrapper?: string[];
  /** Called with the child and everything it printed so far, on each stdout chunk. */
  onStdout?: (child: ReturnType<typeof spawn>, stdout: string) => void;
}

/** Runs `hako boot --memory 64 ...args` to completion; a run that outlives RUN_TIMEOUT_MS is killed and fails. */
function hako(args: string[], options: RunOptions = {}): Promise<Run> {
  const command = [...(options.wrapper ?? []), process.execPath, cli, 'boot', '--memory', '64', ...args];
  return new Promise((resolve, reject) => {
    // stdin stays an open pipe, as a terminal would: it must not keep hako alive.
    const child = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hako ${args.join(' ')} still ran after ${RUN_TIMEOUT_MS} ms; stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`));
    }, RUN_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      stdout += d;
      options.onStdout?.(child, stdout);
    });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Exactly one line on stderr, matching `line`. */
function oneLine(run: Run, line: RegExp): void {
  assert.ok(run.stderr.endsWith('\n') && run.stderr.split('\n').length === 2, `one stderr line: ${JSON.stringify(run.stderr)}`);
  assert.match(run.stderr.trimEnd(), line);
}

test('console output then poweroff: the text on stdout, exit 0, nothing on stderr', async () => {
  const run = await hako(['--kernel', helloGuest]);
  assert.equal(run, { code: 0, signal: null, stdout: HELLO, stderr: '' });
});

test('a panic reported on the exit port: exit 1', async () => {
  const run = await hako(['--kernel', writeTinyGuest(tmp, 'panic', exitWith(1))]);
  assert.is(run.code, 1, run.stderr);
  oneLine(run, /^hako: the guest kernel panicked \(exit port value 1\)$/);
});

test('a triple fault (ud2 with an empty IDT): exit 1, named with the rip', async () => {
  const lidt = x86.lidt(SCRATCH); // SCRATCH holds zeros: limit 0, base 0
  const run = await hako(['--kernel', writeTinyGuest(tmp, 'triple-fault', [...lidt, ...x86.ud2])]);
  assert.is(run.code, 1, run.stderr);
  oneLine(run, new RegExp(`^hako: the guest triple-faulted \\(vCPU 0: .*triple fault.*, rip ${hex(ENTRY + lidt.length)}\\)$`));
});

test('an exit hako cannot handle (int3 in guest kernel mode): exit 1, one line with the rip', async () => {
  const run = await hako(['--kernel', writeTinyGuest(tmp, 'int3', [...x86.int3, ...x86.jmpSelf])]);
  assert.is(run.code, 1, run.stderr);
  // PVM cannot emulate int3 at CPL0; real KVM delivers it, and with no IDT that is a triple fault.
  oneLine(run, isPvmHost()
    ? new RegExp(`^hako: KVM internal error \\(vCPU 0: suberror 1 \\(emulation failure\\), instruction cc eb fe .*, rip ${hex(ENTRY)}\\)$`)
    : /^hako: .*rip 0x[0-9a-f]+\)$/);
});

test('a reset through the i8042: exit 0, the reason on stderr', async () => {
  const reset = [...x86.movAl(I8042_RESET), ...x86.outAl(I8042_COMMAND), ...x86.jmpSelf];
  const run = await hako(['--kernel', writeTinyGuest(tmp, 'reset', reset)]);
  assert.is(run.code, 0, run.stderr);
  oneLine(run, /^hako: the guest requested a reset \(i8042\)$/);
});

/** Thread ids of a process, the names of its threads and the pids of its children, from /proc. */
function tasksAndChildren(pid: number): { tasks: string[]; names: string[]; children: string[] } {
  const tasks = fs.readdirSync(`/proc/${pid}/task`);
  const read = (tid: string, file: string) => {
    try {
      return fs.readFileSync(`/proc/${pid}/task/${tid}/${file}`, 'utf8');
    } catch {
      return ''; // the thread ended meanwhile
    }
  };
  return {
    tasks,
    names: tasks.map((tid) => read(tid, 'comm').trim()),
    children: tasks.flatMap((tid) => read(tid, 'children').split(' ').filter(Boolean)),
  };
}

test('Ctrl-C while the guest spins: exit 130 promptly, the whole process gone', async () => {
  const spin = writeTinyGuest(tmp, 'spin', [...print('spinning\n'), ...x86.jmpSelf]);
  let pid = 0;
  let before: ReturnType<typeof tasksAndChildren> | undefined;
  let sentAt = 0;
  const run = await hako(['--kernel', spin], {
    onStdout: (child, stdout) => {
      if (sentAt || !stdout.includes('\n')) return;
      pid = child.pid!;
      before = tasksAndChildren(pid);
      sentAt = Date.now();
      child.kill('SIGINT');
    },
  });
  const took = Date.now() - sentAt;
  assert.ok(sentAt > 0, `the guest printed no line: ${JSON.stringify(run)}`);
  assert.is(run.code, 130, `exit code after SIGINT (signal ${run.signal}): ${run.stderr}`);
  oneLine(run, /^hako: interrupted \(Ctrl-C\)$/);
  assert.ok(took < 3000, `exited ${took} ms after SIGINT`);
  assert.ok(before!.names.includes('hako-vcpu-0'), `the vCPU thread was running: ${before!.names}`);
  assert.equal(before!.children, [], 'hako starts no child processes');
  const left = before!.tasks.filter((tid) => fs.existsSync(`/proc/${tid}`));
  assert.equal(left, [], `threads of hako (pid ${pid}) still exist`);
});

test('stdout closed while the guest prints (| head): exit 141, no stack trace', async () => {
  const line = print('x'.repeat(31) + '\n');
  const chatty = writeTinyGuest(tmp, 'chatty', [...line, ...x86.jmpBack(line.length + 2)]);
  const run = await hako(['--kernel', chatty], {
    onStdout: (child, stdout) => { if (stdout.length >= 100) child.stdout!.destroy(); },
  });
  assert.is(run.code, 141, run.stderr);
  oneLine(run, /^hako: console output closed$/);
});

test('--vcpus 2: the boot CPU powers off while the AP waits for INIT/SIPI: exit 0', async () => {
  const run = await hako(['--kernel', helloGuest, '--vcpus', '2']);
  assert.equal(run, { code: 0, signal: null, stdout: HELLO, stderr: '' });
});

test("--vcpus 100000: exit 2, naming the host's KVM limit", async () => {
  const { maxVcpus } = native().kvmInfo();
  const run = await hako(['--kernel', helloGuest, '--vcpus', '100000']);
  assert.is(run.code, 2, run.stderr);
  oneLine(run, new RegExp(`^hako boot: vcpus must be at most ${maxVcpus} \\(this host's KVM limit\\), got 100000$`));
});

// A private mount namespace per run: the host's /dev is untouched.
const inMountNamespace = (setup: string) => ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `${setup} && exec "$0" "$@"`];

test('no /dev/kvm: exit 2, saying it does not exist', async () => {
  const run = await hako(['--kernel', helloGuest], { wrapper: inMountNamespace('mount -t tmpfs hako-test-dev /dev') });
  assert.is(run.code, 2, run.stderr);
  oneLine(run, /^hako boot: \/dev\/kvm does not exist: /);
});

test('/dev/kvm is not KVM: exit 2, naming the check that failed', async () => {
  const run = await hako(['--kernel', helloGuest], { wrapper: inMountNamespace('mount --bind /dev/null /dev/kvm') });
  assert.is(run.code, 2, run.stderr);
  oneLine(run, /^hako boot: KVM is not usable: ioctl\(KVM_GET_API_VERSION\): ENOTTY \(/);
});

test('the guest reads the wall-clock time from the RTC (BCD, UTC)', async () => {
  const readRegister = (reg: number) => [...x86.movAl(reg), ...x86.outAl(RTC_INDEX), ...x86.inAl(RTC_DATA), ...x86.outDxAl];
  const HOURS = 4, MINUTES = 2, SECONDS = 0;
  const clock = writeTinyGuest(tmp, 'rtc', [
    ...x86.movDx(COM1), ...readRegister(HOURS), ...readRegister(MINUTES), ...readRegister(SECONDS), ...exitWith(0),
  ]);
  const start = Date.now();
  const run = await hako(['--kernel', clock]);
  const end = Date.now();
  assert.is(run.code, 0, run.stderr);
  const bytes = [...Buffer.from(run.stdout, 'latin1')];
  assert.is(bytes.length, 3, `three register values: ${JSON.stringify(run.stdout)}`);
  assert.ok(bytes.every((b) => (b & 0xf) < 10 && b >> 4 < 10), `BCD values: ${bytes.map(hex)}`);
  const [h, m, s] = bytes.map((b) => (b >> 4) * 10 + (b & 0xf)) as [number, number, number];
  const DAY = 86400;
  const guestSeconds = h * 3600 + m * 60 + s;
  const hostSeconds = Math.floor(start / 1000) % DAY;
  const ahead = (guestSeconds - hostSeconds + DAY) % DAY;
  assert.ok(ahead <= Math.ceil((end - start) / 1000), `guest time ${h}:${m}:${s} vs host ${new Date(start).toISOString()}`);
});

const openFds = () => fs.readdirSync('/proc/self/fd').length;
const threads = () => fs.readdirSync('/proc/self/task').length;

test('Vm.run() in process: fds and threads return to their previous counts', async () => {
  const boot = async () => {
    let out = '';
    const vm = await Vm.create(
      { kernel: helloGuest, cmdline: 'console=ttyS0', vcpus: 2, memoryMiB: 64, cpuTemplate: defaultTemplate(isPvmHost()) },
      { console: (chunk) => { out += chunk; } },
    );
    const exit = await vm.run();
    assert.equal(exit, { kind: 'poweroff', detail: 'the guest powered off' });
    assert.is(out, HELLO);
  };
  // The first run starts what Node keeps for the process (libuv's thread pool, compiled Wasm).
  await boot();
  const fds = openFds(), tasks = threads();
  await boot();
  assert.is(openFds(), fds, 'open fds after run()');
  assert.is(threads(), tasks, 'threads after run()');
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
