// The native addon on real KVM: host checks, errors, and tiny hand-made
// 64-bit guests (a few bytes of machine code) that exercise port and MMIO
// exits, stop paths and cleanup.
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isKvmError, native, type ExitHandler, type KvmError, type NativeVcpu, type NativeVm, type Regs, type StopReason } from '../../host/native.js';
import { setupLongMode } from '../../host/boot/longmode.js';

const addon = native();

// ---- tiny guests ----

const CODE_ADDR = 0x10_0000;  // vCPU i runs the program at CODE_ADDR + i * 0x1000
const DATA_ADDR = 0x12_0000;  // scratch RAM the programs read and write
const MMIO_ADDR = 0xd000_0000; // no memory slot there: every access exits
const DONE_PORT = 0xf4;        // a write here ends the test guest
const RAM_PAGES = 64;          // 4 MiB of 64 KiB Wasm pages

const le = (value: number | bigint, bytes: number): number[] =>
  Array.from({ length: bytes }, (_, i) => Number((BigInt(value) >> BigInt(8 * i)) & 0xffn));

// x86-64 encodings used by the programs.
const asm = {
  movDx: (port: number) => [0x66, 0xba, ...le(port, 2)],
  movAl: (v: number) => [0xb0, v],
  movEcx: (v: number) => [0xb9, ...le(v, 4)],
  movRsi: (v: number) => [0x48, 0xbe, ...le(v, 8)],
  movRdi: (v: number) => [0x48, 0xbf, ...le(v, 8)],
  movRbx: (v: number) => [0x48, 0xbb, ...le(v, 8)],
  movRax: (v: bigint) => [0x48, 0xb8, ...le(v, 8)],
  outAl: [0xee], outAx: [0x66, 0xef], outEax: [0xef],
  inAl: [0xec], inAx: [0x66, 0xed], inEax: [0xed],
  lodsb: [0xac], cld: [0xfc],
  repOutsb: [0xf3, 0x6e], repInsb: [0xf3, 0x6c],
  decEcx: [0xff, 0xc9],
  jnz: (rel: number) => [0x75, rel & 0xff],
  jmpSelf: [0xeb, 0xfe],
  ud2: [0x0f, 0x0b],
  // [rbx] accesses of 1, 2, 4 and 8 bytes
  storeByte: (v: number) => [0xc6, 0x03, v],
  storeWord: (v: number) => [0x66, 0xc7, 0x03, ...le(v, 2)],
  storeDword: (v: number) => [0xc7, 0x03, ...le(v, 4)],
  storeRax: [0x48, 0x89, 0x03],
  loadAl: [0x8a, 0x03], loadAx: [0x66, 0x8b, 0x03], loadEax: [0x8b, 0x03], loadRax: [0x48, 0x8b, 0x03],
  // stores to an absolute address below 2 GiB
  saveAl: (a: number) => [0x88, 0x04, 0x25, ...le(a, 4)],
  saveAx: (a: number) => [0x66, 0x89, 0x04, 0x25, ...le(a, 4)],
  saveEax: (a: number) => [0x89, 0x04, 0x25, ...le(a, 4)],
  saveRax: (a: number) => [0x48, 0x89, 0x04, 0x25, ...le(a, 4)],
};
const done = [...asm.movDx(DONE_PORT), ...asm.outAl, ...asm.jmpSelf];

interface Guest {
  vm: NativeVm;
  vcpus: NativeVcpu[];
  ram: Uint8Array;
}

const zeroRegs: Regs = {
  rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n,
  r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
  rip: 0n, rflags: 2n,
};

/** A VM whose vCPU i starts in 64-bit mode at programs[i]. */
function tinyGuest(...programs: number[][]): Guest {
  const memory = new WebAssembly.Memory({ initial: RAM_PAGES });
  const ram = new Uint8Array(memory.buffer);
  const kvmVm = new addon.Vm();
  kvmVm.setMemory(0, 0, memory.buffer, memory.buffer.byteLength, memory);
  const longMode = setupLongMode(ram);
  const vcpus = programs.map((program, id) => {
    ram.set(program, CODE_ADDR + id * 0x1000);
    const vcpu = kvmVm.createVcpu(id);
    vcpu.setSregs({ ...vcpu.getSregs(), ...longMode });
    vcpu.setRegs({ ...zeroRegs, rip: BigInt(CODE_ADDR + id * 0x1000) });
    // Application processors wait for INIT/SIPI unless made runnable.
    if (id > 0) vcpu.setMpState(0);
    return vcpu;
  });
  return { vm: kvmVm, vcpus, ram };
}

interface Stop {
  reason: StopReason;
  detail: string;
}

/**
 * Runs the guest until every vCPU stopped, then closes the VM. A write to
 * DONE_PORT stops the VM; other accesses go to `onExit`.
 */
function runGuest(guest: Guest, onExit: ExitHandler = () => undefined, timeoutMs = 10_000): Promise<Stop[]> {
  return new Promise((resolve, reject) => {
    const stops: Stop[] = [];
    let left = guest.vcpus.length;
    const timer = setTimeout(() => reject(new Error(`the guest did not stop within ${timeoutMs} ms`)), timeoutMs);
    guest.vm.run((vcpu, kind, addr, size, isWrite, value) => {
      if (kind === 'pio' && addr === DONE_PORT) return guest.vm.stop();
      return onExit(vcpu, kind, addr, size, isWrite, value);
    }, (vcpu, reason, detail) => {
      stops[vcpu] = { reason, detail };
      if (--left > 0) return;
      clearTimeout(timer);
      guest.vm.close();
      resolve(stops);
    });
  });
}

const openFds = () => fs.readdirSync('/proc/self/fd').length;
/** Threads the addon started (it names them hako-vcpu-<id>); Node starts threads of its own at will. */
const vcpuThreads = () => fs.readdirSync('/proc/self/task')
  .filter((tid) => fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith('hako-vcpu')).length;
const tick = () => new Promise((resolve) => setImmediate(resolve));

function expectKvmError(fn: () => unknown, code: string, syscall: string): KvmError {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  if (!isKvmError(error)) throw new Error(`expected ${syscall} to fail with ${code}, got ${String(error)}`);
  assert.is(error.code, code, error.message);
  assert.is(error.syscall, syscall);
  assert.ok(error.message.startsWith(`${syscall}: ${code} (`), error.message);
  return error;
}

// ---- host ----

test('kvmInfo reports a usable KVM', () => {
  const info = addon.kvmInfo();
  assert.is(info.apiVersion, 12);
  assert.ok(info.recommendedVcpus >= 1);
  assert.ok(info.maxVcpus >= info.recommendedVcpus);
});

test('supported CPUID and MSR list', () => {
  const cpuid = addon.getSupportedCpuid();
  const leaf0 = cpuid.find((e) => e.function === 0);
  assert.ok(leaf0 && leaf0.eax >= 1, 'leaf 0 reports the highest basic leaf');
  const msrs = addon.getMsrIndexList();
  assert.ok(msrs.includes(0x10), 'IA32_TIME_STAMP_COUNTER is listed');
});

// ---- errors ----

test('bad memory slots fail with the ioctl and errno', () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const kvmVm = new addon.Vm();
  try {
    const misaligned = expectKvmError(() => kvmVm.setMemory(0, 0x1001, memory.buffer, 0x1000, memory),
      'EINVAL', 'ioctl(KVM_SET_USER_MEMORY_REGION)');
    assert.is(misaligned.errno, 22);
    assert.match(misaligned.message, 'guest address 0x1001');
    const tooBig = expectKvmError(() => kvmVm.setMemory(0, 0, memory.buffer, 0x20000, memory),
      'EINVAL', 'ioctl(KVM_SET_USER_MEMORY_REGION)');
    assert.match(tooBig.message, "byteLength 0x10000");
    kvmVm.setMemory(0, 0, memory.buffer, 0x10000, memory);
    expectKvmError(() => kvmVm.setMemory(0, 0x100000, memory.buffer, 0x10000, memory), 'EEXIST', 'ioctl(KVM_SET_USER_MEMORY_REGION)');
    expectKvmError(() => kvmVm.addAnonymousMemory(1, 0x8000, 0x10000), 'EEXIST', 'ioctl(KVM_SET_USER_MEMORY_REGION)');
    assert.throws(() => kvmVm.setMemory(1, 0, new Uint8Array(16) as unknown as ArrayBuffer, 16, memory), /buffer must be an ArrayBuffer/);
    assert.throws(() => kvmVm.setMemory(-1, 0, memory.buffer, 0x1000, memory), /slot must be an integer/);
  } finally {
    kvmVm.close();
  }
});

test('other argument and state errors', () => {
  const kvmVm = new addon.Vm();
  const vcpu = kvmVm.createVcpu(0);
  expectKvmError(() => kvmVm.createVcpu(0), 'EEXIST', 'ioctl(KVM_CREATE_VCPU)');
  expectKvmError(() => kvmVm.addIrqfd(0, 5), 'EBADF', 'ioctl(KVM_IRQFD)');
  expectKvmError(() => vcpu.setLapic(Buffer.alloc(16)), 'EINVAL', 'ioctl(KVM_SET_LAPIC)');
  expectKvmError(() => vcpu.getMsrs([0xdeadbeef]), 'EINVAL', 'ioctl(KVM_GET_MSRS)');
  assert.throws(() => vcpu.setRegs({ ...zeroRegs, rip: -1n }), /regs.rip must be a BigInt/);
  assert.throws(() => vcpu.setRegs({ ...zeroRegs, rip: 1 as unknown as bigint }), /regs.rip must be a BigInt/);
  assert.throws(() => new (vcpu.constructor as new () => unknown)(), /created by Vm.createVcpu/);
  kvmVm.close();
  kvmVm.close();
  expectKvmError(() => vcpu.getRegs(), 'EBADF', 'ioctl(KVM_GET_REGS)');
  expectKvmError(() => kvmVm.createEventfd(), 'EBADF', 'eventfd');
  kvmVm.stop();
});

test('vCPU state round-trips', () => {
  const guest = tinyGuest([...asm.jmpSelf]);
  const [vcpu] = guest.vcpus;
  try {
    assert.is(vcpu.id, 0);
    const regs = { ...zeroRegs, rax: 0xfedc_ba98_7654_3210n, r15: 2n ** 64n - 1n, rip: 0x10_0000n };
    vcpu.setRegs(regs);
    assert.equal(vcpu.getRegs(), regs);
    const sregs = vcpu.getSregs();
    assert.is(sregs.cs.l, 1, '64-bit code segment');
    assert.is(sregs.efer & 0x500n, 0x500n, 'EFER.LME and LMA');
    vcpu.setSregs(sregs);
    assert.equal(vcpu.getSregs(), sregs);
    vcpu.resetFpu();
    vcpu.setCpuid(addon.getSupportedCpuid());
    vcpu.setMsrs([{ index: 0x174, data: 0x10n }]); // IA32_SYSENTER_CS
    assert.equal(vcpu.getMsrs([0x174]), [{ index: 0x174, data: 0x10n }]);
    const lapic = vcpu.getLapic();
    assert.is(lapic.length, 1024);
    vcpu.setLapic(lapic);
    assert.ok(vcpu.getTscKhz() > 0);
  } finally {
    guest.vm.close();
  }
});

// ---- exits ----

test('port writes reach the handler in order, one call per rep outsb element', async () => {
  const text = 'Hello, hako!\n';
  const textAddr = DATA_ADDR;
  const guest = tinyGuest([
    ...asm.cld, ...asm.movRsi(textAddr), ...asm.movEcx(text.length), ...asm.movDx(0x3f8),
    ...asm.lodsb, ...asm.outAl, ...asm.decEcx, ...asm.jnz(-6),
    ...asm.movRsi(textAddr), ...asm.movEcx(text.length), ...asm.repOutsb,
    ...done,
  ]);
  guest.ram.set(Buffer.from(text), textAddr);
  let seen = '';
  const [stop] = await runGuest(guest, (vcpu, kind, addr, size, isWrite, value) => {
    assert.equal([vcpu, kind, addr, size, isWrite], [0, 'pio', 0x3f8, 1, true]);
    seen += String.fromCharCode(Number(value));
  });
  assert.equal(stop, { reason: 'stopped', detail: '' });
  assert.is(seen, text + text);
});

test('port reads return the handler value, truncated to the access size', async () => {
  const guest = tinyGuest([
    ...asm.movDx(0x70), ...asm.inAl, ...asm.saveAl(DATA_ADDR),
    ...asm.inAx, ...asm.saveAx(DATA_ADDR + 8),
    ...asm.inEax, ...asm.saveEax(DATA_ADDR + 16),
    ...asm.inAl, ...asm.saveAl(DATA_ADDR + 24),
    ...asm.cld, ...asm.movRdi(DATA_ADDR + 32), ...asm.movEcx(3), ...asm.repInsb,
    ...done,
  ]);
  const answers = [0xabn, 0xbeefn, 0xdead_beefn, 0x1ffn, 1n, 2n, 3n];
  const sizes: number[] = [];
  await runGuest(guest, (_vcpu, kind, addr, size, isWrite) => {
    assert.equal([kind, addr, isWrite], ['pio', 0x70, false]);
    sizes.push(size);
    return answers[sizes.length - 1];
  });
  assert.equal(sizes, [1, 2, 4, 1, 1, 1, 1]);
  const view = new DataView(guest.ram.buffer);
  assert.is(view.getUint8(DATA_ADDR), 0xab);
  assert.is(view.getUint16(DATA_ADDR + 8, true), 0xbeef);
  assert.is(view.getUint32(DATA_ADDR + 16, true), 0xdead_beef);
  assert.is(view.getUint8(DATA_ADDR + 24), 0xff);
  assert.equal([...guest.ram.subarray(DATA_ADDR + 32, DATA_ADDR + 35)], [1, 2, 3]);
});

test('MMIO writes and reads of 1, 2, 4 and 8 bytes', async () => {
  const big = 0x0123_4567_89ab_cdefn;
  const guest = tinyGuest([
    ...asm.movRbx(MMIO_ADDR), ...asm.storeByte(0x11),
    ...asm.movRbx(MMIO_ADDR + 2), ...asm.storeWord(0x2222),
    ...asm.movRbx(MMIO_ADDR + 4), ...asm.storeDword(0x3333_3333),
    ...asm.movRbx(MMIO_ADDR + 8), ...asm.movRax(big), ...asm.storeRax,
    ...asm.movRbx(MMIO_ADDR + 16), ...asm.loadAl, ...asm.saveAl(DATA_ADDR),
    ...asm.loadAx, ...asm.saveAx(DATA_ADDR + 8),
    ...asm.loadEax, ...asm.saveEax(DATA_ADDR + 16),
    ...asm.loadRax, ...asm.saveRax(DATA_ADDR + 24),
    ...done,
  ]);
  const accesses: unknown[] = [];
  const reads = [0x44n, 0x5555n, 0x6666_6666n, 0xfedc_ba98_7654_3210n];
  let read = 0;
  await runGuest(guest, (_vcpu, kind, addr, size, isWrite, value) => {
    accesses.push([kind, addr - MMIO_ADDR, size, isWrite, value]);
    return isWrite ? undefined : reads[read++];
  });
  assert.equal(accesses, [
    ['mmio', 0, 1, true, 0x11n], ['mmio', 2, 2, true, 0x2222n], ['mmio', 4, 4, true, 0x3333_3333n],
    ['mmio', 8, 8, true, big],
    ['mmio', 16, 1, false, 0n], ['mmio', 16, 2, false, 0n], ['mmio', 16, 4, false, 0n], ['mmio', 16, 8, false, 0n],
  ]);
  const view = new DataView(guest.ram.buffer);
  assert.is(view.getUint8(DATA_ADDR), 0x44);
  assert.is(view.getUint16(DATA_ADDR + 8, true), 0x5555);
  assert.is(view.getUint32(DATA_ADDR + 16, true), 0x6666_6666);
  assert.is(view.getBigUint64(DATA_ADDR + 24, true), 0xfedc_ba98_7654_3210n);
});

test('anonymous memory is guest RAM', async () => {
  const anonAddr = 0x80_0000; // right above the 4 MiB Wasm memory
  const guest = tinyGuest([
    ...asm.movRbx(anonAddr), ...asm.movRax(0x1122_3344_5566_7788n), ...asm.storeRax,
    ...asm.movRax(0n), ...asm.loadRax, ...asm.movRbx(MMIO_ADDR), ...asm.storeRax,
    ...done,
  ]);
  guest.vm.addAnonymousMemory(1, anonAddr, 0x10_0000);
  const values: bigint[] = [];
  await runGuest(guest, (_vcpu, _kind, _addr, _size, _isWrite, value) => { values.push(value); });
  assert.equal(values, [0x1122_3344_5566_7788n]);
});

test('ioeventfd takes MMIO writes without an exit; irqfd and irq lines are accepted', async () => {
  const guest = tinyGuest([
    ...asm.movRbx(MMIO_ADDR), ...asm.storeDword(1), ...asm.storeDword(2), ...asm.storeDword(3),
    ...asm.movDx(0x81), ...asm.outAl,
    ...done,
  ]);
  const doorbell = guest.vm.createEventfd();
  guest.vm.addIoeventfd(doorbell, MMIO_ADDR, 4, false);
  const irq = guest.vm.createEventfd();
  guest.vm.addIrqfd(irq, 5);
  guest.vm.setIrqLine(4, true);
  guest.vm.setIrqLine(4, false);
  const exits: number[] = [];
  let doorbells = 0n;
  await runGuest(guest, (_vcpu, _kind, addr) => {
    exits.push(addr);
    const counter = Buffer.alloc(8);
    fs.readSync(doorbell, counter);
    doorbells = counter.readBigUInt64LE();
  });
  assert.equal(exits, [0x81]);
  assert.is(doorbells, 3n);
});

// ---- stops ----

test('a triple fault stops the vCPU', async () => {
  // setupLongMode leaves the IDT empty: #UD -> #GP -> #DF -> shutdown.
  const [stop] = await runGuest(tinyGuest([...asm.ud2]));
  assert.is(stop.reason, 'shutdown');
  assert.match(stop.detail, /rip 0x100000$/);
});

test('an instruction the emulator rejects is an internal error with its bytes', async () => {
  // On PVM hosts guest kernel code is emulated, and int3 is one of the
  // instructions the emulator rejects; on other hosts int3 triple-faults.
  const [stop] = await runGuest(tinyGuest([0xcc]));
  if (stop.reason === 'internal-error') {
    assert.match(stop.detail, /^suberror 1 \(emulation failure\), instruction cc /);
    assert.match(stop.detail, /rip 0x100000$/);
  } else {
    assert.is(stop.reason, 'shutdown');
  }
});

test('stop() interrupts a guest spinning in a tight loop', async () => {
  const guest = tinyGuest([...asm.jmpSelf]);
  const stopped = runGuest(guest);
  await new Promise((resolve) => setTimeout(resolve, 50));
  expectKvmError(() => guest.vcpus[0].getRegs(), 'EBUSY', 'ioctl(KVM_GET_REGS)');
  const started = Date.now();
  guest.vm.stop();
  const [stop] = await stopped;
  assert.equal(stop, { reason: 'stopped', detail: '' });
  assert.ok(Date.now() - started < 500, `stopped after ${Date.now() - started} ms`);
});

test('stop() wakes a vCPU halted in the kernel', async () => {
  const guest = tinyGuest([0xfa, 0xf4]); // cli; hlt: KVM sleeps in the kernel, no exit ever comes
  const stopped = runGuest(guest);
  await new Promise((resolve) => setTimeout(resolve, 50));
  guest.vm.stop();
  const [stop] = await stopped;
  assert.is(stop.reason, 'stopped');
});

test('stop() before run(): the vCPUs report stopped as soon as they start', async () => {
  const guest = tinyGuest([...asm.jmpSelf], [...asm.jmpSelf]);
  guest.vm.stop();
  const stops = await runGuest(guest);
  assert.equal(stops.map((s) => s.reason), ['stopped', 'stopped']);
});

test('stop() inside onExit still completes that access, and no exit follows', async () => {
  const guest = tinyGuest([...asm.movDx(0x80), ...asm.outAl, 0xeb, 0xfd]); // out dx, al; jmp back
  let exits = 0;
  let ripInHandler = 0n;
  const [stop] = await runGuest(guest, () => {
    if (++exits < 5) return;
    ripInHandler = guest.vcpus[0].getRegs().rip; // the vCPU is parked: state is accessible
    guest.vm.stop();
    guest.vm.stop();
  });
  assert.is(exits, 5);
  assert.is(ripInHandler, BigInt(CODE_ADDR + 5));
  assert.is(stop.reason, 'stopped');
});

test('a throwing handler stops its vCPU with the message and RIP', async () => {
  const guest = tinyGuest([...asm.movDx(0x80), ...asm.outAl, ...asm.jmpSelf]);
  const [stop] = await runGuest(guest, () => { throw new Error('device model bug'); });
  assert.is(stop.reason, 'error');
  assert.match(stop.detail, /^the exit handler threw: device model bug, rip 0x100005$/);
});

test('a read answered with a number is an error, not a silent zero', async () => {
  const guest = tinyGuest([...asm.movDx(0x80), ...asm.inAl, ...asm.jmpSelf]);
  const [stop] = await runGuest(guest, () => 1 as unknown as bigint);
  assert.is(stop.reason, 'error');
  assert.match(stop.detail, /returned a number for a 1-byte read/);
});

test('two vCPUs run at once', async () => {
  const loop = (port: number) => [
    ...asm.movEcx(1000), ...asm.movDx(port), ...asm.outAl, ...asm.decEcx, ...asm.jnz(-5), ...asm.jmpSelf,
  ];
  const guest = tinyGuest(loop(0x10), loop(0x11));
  const counts = [0, 0];
  const stops = await runGuest(guest, (vcpu, _kind, addr) => {
    assert.is(addr, 0x10 + vcpu);
    if (++counts[vcpu] === 1000 && counts[1 - vcpu] === 1000) guest.vm.stop();
  });
  assert.equal(counts, [1000, 1000]);
  assert.equal(stops.map((s) => s.reason), ['stopped', 'stopped']);
});

// ---- cleanup ----

test('close() leaves no fds or threads behind', async () => {
  await runGuest(tinyGuest(done)); // warm-up: libuv opens its async eventfd once
  const fds = openFds();
  const guest = tinyGuest([...asm.jmpSelf], [...asm.jmpSelf]);
  guest.vm.createEventfd();
  guest.vm.addAnonymousMemory(1, 0x80_0000, 0x10_0000);
  const stopped = runGuest(guest);
  await new Promise((resolve) => setTimeout(resolve, 10)); // the threads name themselves
  assert.is(vcpuThreads(), 2);
  guest.vm.stop();
  await stopped;
  await tick();
  assert.is(openFds(), fds);
  assert.is(vcpuThreads(), 0);
});

test('close() inside onExit, before any onStop, is safe', async () => {
  const fds = openFds();
  const guest = tinyGuest([...asm.movDx(0x80), ...asm.outAl, ...asm.jmpSelf], [...asm.jmpSelf]);
  let stops = 0;
  await new Promise<void>((resolve) => {
    guest.vm.run(() => { guest.vm.close(); setTimeout(resolve, 20); }, () => { stops++; });
  });
  assert.is(stops, 0, 'no callback after close()');
  assert.is(openFds(), fds);
});

test('a VM that was never closed is closed when collected', async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const fds = openFds();
  (() => {
    const guest = tinyGuest([...asm.jmpSelf]);
    guest.vm.createEventfd();
  })();
  assert.ok(openFds() > fds);
  for (let i = 0; i < 5 && openFds() > fds; i++) {
    gc();
    await tick();
  }
  assert.is(openFds(), fds);
});

test.run();
