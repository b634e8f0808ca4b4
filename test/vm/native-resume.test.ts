// Vm.run() after a stop, on real KVM: a tiny 64-bit guest counting in its RAM
// is stopped, inspected and run again, and goes on exactly where it was; run()
// refuses while a run is in progress; many stop/run cycles leak nothing.
import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isKvmError, native, type ExitHandler, type NativeVcpu, type NativeVm, type Regs, type StopReason } from '../../host/native.js';
import { setupLongMode } from '../../host/boot/longmode.js';

const addon = native();

const RAM_PAGES = 64;            // 4 MiB of 64 KiB Wasm pages
const CODE_ADDR = 0x10_0000;     // vCPU i runs its program at CODE_ADDR + i * 0x1000
const COUNTER_ADDR = 0x12_0000;  // vCPU i counts in the qword at COUNTER_ADDR + i * 8
const PORT = 0x80;               // vCPU i reports on port PORT + i
const DONE_PORT = 0xf4;
const EVERY = 100;               // iterations between two reports

const le = (value: number, bytes: number): number[] =>
  Array.from({ length: bytes }, (_, i) => (value >>> (8 * i)) & 0xff);

/** A short jump from the end of `code` (which it ends) back to offset `target`. */
const jumpBack = (code: number[], target: number, opcode: number): number[] => [opcode, (target - (code.length + 2)) & 0xff];

/**
 * loop: inc qword [counter]; dec ecx; jnz loop; mov ecx, EVERY;
 *       mov eax, [counter]; out dx, eax; jmp loop
 * Each report carries the counter, so the reports of a guest that loses or
 * repeats nothing across stops are exactly EVERY, 2 * EVERY, 3 * EVERY...
 */
function counterProgram(id: number): { code: number[]; reportStart: number; reportEnd: number } {
  const counter = le(COUNTER_ADDR + id * 8, 4);
  const code = [0x66, 0xba, ...le(PORT + id, 2), 0xb9, ...le(EVERY, 4)];
  const loop = code.length;
  code.push(0x48, 0xff, 0x04, 0x25, ...counter, 0xff, 0xc9);
  code.push(...jumpBack(code, loop, 0x75));
  const reportStart = code.length;
  code.push(0xb9, ...le(EVERY, 4), 0x8b, 0x04, 0x25, ...counter, 0xef);
  const reportEnd = code.length;
  code.push(...jumpBack(code, loop, 0xeb));
  return { code, reportStart, reportEnd };
}

const zeroRegs: Regs = {
  rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n,
  r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
  rip: 0n, rflags: 2n,
};

interface Guest {
  vm: NativeVm;
  vcpus: NativeVcpu[];
  ram: Uint8Array;
}

/** A VM whose vCPU i starts programs[i] in 64-bit mode. */
function guestOf(programs: number[][]): Guest {
  const memory = new WebAssembly.Memory({ initial: RAM_PAGES });
  const ram = new Uint8Array(memory.buffer);
  const vm = new addon.Vm();
  vm.setMemory(0, 0, memory.buffer, memory.buffer.byteLength, memory);
  const longMode = setupLongMode(ram);
  const vcpus = programs.map((program, id) => {
    ram.set(program, CODE_ADDR + id * 0x1000);
    const vcpu = vm.createVcpu(id);
    vcpu.setSregs({ ...vcpu.getSregs(), ...longMode });
    vcpu.setRegs({ ...zeroRegs, rip: BigInt(CODE_ADDR + id * 0x1000) });
    if (id > 0) vcpu.setMpState(0); // application processors wait for INIT/SIPI unless made runnable
    return vcpu;
  });
  return { vm, vcpus, ram };
}

const counterGuest = (vcpus: number) => guestOf(Array.from({ length: vcpus }, (_, id) => counterProgram(id).code));

const counter = (g: Guest, id: number) => new DataView(g.ram.buffer).getBigUint64(COUNTER_ADDR + id * 8, true);

interface Stop {
  reason: StopReason;
  detail: string;
}

/** One run(): resolves inside the last onStop with every vCPU's stop. */
function runOnce(g: Guest, onExit: ExitHandler): Promise<Stop[]> {
  return new Promise((resolve) => {
    const stops: Stop[] = [];
    let left = g.vcpus.length;
    g.vm.run(onExit, (vcpu, reason, detail) => {
      stops[vcpu] = { reason, detail };
      if (--left === 0) resolve(stops);
    });
  });
}

/** onExit for counter guests: records each vCPU's reports in `reports[vcpu]`, then calls `after`. */
function recordReports(reports: bigint[][], after: (vcpu: number) => void = () => undefined): ExitHandler {
  return (vcpu, kind, addr, size, isWrite, value) => {
    assert.equal([kind, addr, size, isWrite], ['pio', PORT + vcpu, 4, true]);
    (reports[vcpu] ??= []).push(value);
    after(vcpu);
  };
}

/** Reports are EVERY, 2 * EVERY, ...: none lost, none repeated. */
function assertReportsInSequence(reports: bigint[]): void {
  reports.forEach((value, i) => assert.is(value, BigInt((i + 1) * EVERY), `report ${i}`));
}

const allStopped = (stops: Stop[]) => assert.equal(stops.map((s) => s.reason), stops.map(() => 'stopped'));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tick = () => new Promise((resolve) => setImmediate(resolve));
const openFds = () => fs.readdirSync('/proc/self/fd').length;
const threads = () => Number(/^Threads:\s+(\d+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]);
/** The thread count once it settled at `expected`: a joined thread may be counted for a moment more. */
async function settledThreads(expected: number): Promise<number> {
  for (let i = 0; i < 50 && threads() !== expected; i++) await sleep(1);
  return threads();
}
const vcpuThreads = () => fs.readdirSync('/proc/self/task')
  .filter((tid) => fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith('hako-vcpu')).length;

function expectKvmError(fn: () => unknown, code: string, syscall: string, message: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isKvmError(e), String(e));
    assert.is(e.code, code, e.message);
    assert.is(e.syscall, syscall);
    assert.match(e.message, message);
    return;
  }
  assert.unreachable(`${syscall} succeeded, expected ${code}`);
}

/** Every VM-wide and vCPU state getter works: no vCPU may run. */
function readAllState(g: Guest): void {
  for (const vcpu of g.vcpus) {
    vcpu.getRegs();
    vcpu.getSregs();
    vcpu.getLapic();
    vcpu.getVcpuEvents();
    vcpu.getMpState();
  }
  for (const chip of [0, 1, 2] as const) g.vm.getIrqchip(chip);
  g.vm.getPit2();
  g.vm.getClock();
}

test('a stopped guest runs on from exactly where it stopped', async () => {
  const g = counterGuest(1);
  const [vcpu] = g.vcpus;
  const { code, reportStart, reportEnd } = counterProgram(0);
  const reports: bigint[][] = [];
  try {
    // Stopped inside its 20th report: that out completes, no guest code runs after it.
    const onExit = recordReports(reports, () => { if (reports[0].length % 20 === 0) g.vm.stop(); });
    allStopped(await runOnce(g, onExit));
    assert.is(counter(g, 0), BigInt(20 * EVERY));
    const regs = vcpu.getRegs();
    assert.is(regs.rip, BigInt(CODE_ADDR + reportEnd), 'rip is past the completed out');
    assert.is(regs.rax, BigInt(20 * EVERY));
    readAllState(g);
    await sleep(20);
    assert.is(counter(g, 0), BigInt(20 * EVERY), 'the guest does not run between runs');

    allStopped(await runOnce(g, onExit));
    assert.is(counter(g, 0), BigInt(40 * EVERY));
    assertReportsInSequence(reports[0]);

    // Stopped from outside while it counts: wherever it is, it goes on from there.
    const stopped = runOnce(g, recordReports(reports));
    while (counter(g, 0) < BigInt(40 * EVERY + EVERY / 2)) await sleep(1);
    g.vm.stop();
    allStopped(await stopped);
    const count = counter(g, 0);
    assert.ok(count > BigInt(40 * EVERY), `the counter went on from ${40 * EVERY} (now ${count})`);
    const rip = Number(vcpu.getRegs().rip) - CODE_ADDR;
    assert.ok(rip >= 0 && rip < code.length, `rip 0x${rip.toString(16)} is in the program`);
    const reportPending = rip >= reportStart && rip < reportEnd;
    assert.is(reports[0].length, Math.floor(Number(count) / EVERY) - (reportPending ? 1 : 0), 'one report per EVERY iterations');
    assertReportsInSequence(reports[0]);
  } finally {
    g.vm.close();
  }
  expectKvmError(() => g.vm.run(() => undefined, () => undefined), 'EBADF', 'run', /closed/);
});

test('run() refuses while a run is in progress; inside the last onStop it starts the next run', async () => {
  const g = counterGuest(2);
  const noop = () => undefined;
  const reports: bigint[][] = [];
  try {
    const resumed = await new Promise<Stop[]>((resolve, reject) => {
      let left = 2;
      g.vm.run(recordReports(reports), (vcpu, reason) => {
        try {
          assert.is(reason, 'stopped', `vCPU ${vcpu}`);
          if (--left > 0) {
            expectKvmError(() => g.vm.run(noop, noop), 'EBUSY', 'run', /still stopping/);
            return;
          }
          readAllState(g);
          resolve(runOnce(g, recordReports(reports)));
          setTimeout(() => g.vm.stop(), 20);
        } catch (e) {
          reject(e);
        }
      });
      expectKvmError(() => g.vm.run(noop, noop), 'EBUSY', 'run', /the VM is running: stop\(\) it/);
      setTimeout(() => {
        g.vm.stop();
        expectKvmError(() => g.vm.run(noop, noop), 'EBUSY', 'run', /the previous run is still stopping/);
      }, 20);
    });
    allStopped(resumed);
    const counts = [counter(g, 0), counter(g, 1)];
    for (const r of reports) assertReportsInSequence(r);
    assert.ok(counts.every((c) => c > 0n), `both vCPUs counted: ${counts}`);
    expectKvmError(() => g.vm.createVcpu(2), 'EBUSY', 'ioctl(KVM_CREATE_VCPU)', /before the first run/);
  } finally {
    g.vm.close();
  }
});

test('stop() once a run ended stops the next run before it runs guest code', async () => {
  const g = counterGuest(1);
  try {
    const stopped = runOnce(g, recordReports([]));
    await sleep(10);
    g.vm.stop();
    await stopped;
    const count = counter(g, 0);
    const rip = g.vcpus[0].getRegs().rip;
    // Here, right after the last onStop, as later: the stop is for the next run.
    g.vm.stop();
    allStopped(await runOnce(g, () => assert.unreachable('no guest code runs')));
    await tick();
    g.vm.stop();
    allStopped(await runOnce(g, () => assert.unreachable('no guest code runs')));
    assert.is(counter(g, 0), count);
    assert.is(g.vcpus[0].getRegs().rip, rip);
    // That stop was spent: the run after it runs (until stopped).
    let ended = false;
    const running = runOnce(g, recordReports([])).finally(() => { ended = true; });
    while (!ended && counter(g, 0) === count) await sleep(1);
    assert.not.ok(ended, 'the run went on');
    g.vm.stop();
    allStopped(await running);
    assert.ok(counter(g, 0) > count);
  } finally {
    g.vm.close();
  }
});

test('after a stop the guest caused, run() goes on from there too', async () => {
  // out 0x80, al; out DONE_PORT, al; jmp self
  const g = guestOf([[0x66, 0xba, ...le(0x80, 2), 0xee, 0x66, 0xba, ...le(DONE_PORT, 2), 0xee, 0xeb, 0xfe]]);
  try {
    const [failed] = await runOnce(g, () => { throw new Error('device model bug'); });
    assert.is(failed.reason, 'error');
    assert.match(failed.detail, /device model bug/);
    const ports: number[] = [];
    const [done] = await runOnce(g, (_vcpu, _kind, addr) => {
      ports.push(addr);
      if (addr === DONE_PORT) g.vm.stop();
    });
    assert.is(done.reason, 'stopped');
    assert.equal(ports, [DONE_PORT], 'the failed out is not repeated');
  } finally {
    g.vm.close();
  }
});

test('50 stop/run cycles leak no fd or thread, and the guests count on', async () => {
  const warmUp = counterGuest(1); // libuv opens its async eventfd once
  await runOnce(warmUp, () => warmUp.vm.stop());
  warmUp.vm.close();
  await tick();
  const fds = openFds();
  const g = counterGuest(2);
  const reports: bigint[][] = [];
  // Stops inside the first report of a run, whichever vCPU makes it.
  let stopNow = true;
  const onExit = recordReports(reports, () => {
    if (stopNow) g.vm.stop();
    stopNow = false;
  });
  const cycle = async () => {
    stopNow = true;
    allStopped(await runOnce(g, onExit));
    readAllState(g);
    await tick(); // the vCPU threads end right after their onStop
  };
  await cycle();
  const vmFds = openFds();
  const threadCount = threads();
  const reportCount = () => reports.reduce((sum, r) => sum + r.length, 0);
  for (let i = 0; i < 50; i++) {
    const before = reportCount();
    await cycle();
    // (A vCPU stopped right before its report may make it without counting.)
    assert.ok(reportCount() > before, `cycle ${i}: the guests ran on`);
    assert.is(openFds(), vmFds, `cycle ${i}: fds`);
    assert.is(await settledThreads(threadCount), threadCount, `cycle ${i}: threads`);
    assert.is(vcpuThreads(), 0, `cycle ${i}: vCPU threads`);
  }
  for (const [id, r] of reports.entries()) {
    assertReportsInSequence(r);
    assert.ok(counter(g, id) >= BigInt(r.length * EVERY), `vCPU ${id} counted at least up to its last report`);
  }
  // close() during a run still ends everything.
  runOnce(g, recordReports([]));
  for (let i = 0; i < 100 && vcpuThreads() < 2; i++) await sleep(1); // the threads name themselves
  assert.is(vcpuThreads(), 2);
  g.vm.close();
  await tick();
  assert.is(vcpuThreads(), 0);
  assert.ok(openFds() <= fds, `${openFds()} fds open, ${fds} before the VM`); // Node may have closed one of its own meanwhile
});

test.run();
