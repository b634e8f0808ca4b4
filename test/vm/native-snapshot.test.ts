// The addon's snapshot state accessors on real KVM: every accessor round-trips,
// bad blobs are refused, and a guest stopped mid-loop, saved and loaded into a
// new VM carries on from where it was.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isKvmError, native, type IrqchipId, type NativeVcpu, type NativeVm, type Regs } from '../../host/native.js';
import { setupLongMode } from '../../host/boot/longmode.js';
import { captureVcpu, captureVm, readableMsrs, restoreVcpu, restoreVm, type VcpuState, type VmState } from '../../host/snapshot/machine_state.js';

const addon = native();
const { xsave, xcrs } = addon.kvmInfo();

const RAM_PAGES = 64;            // 4 MiB of 64 KiB Wasm pages
const CODE_ADDR = 0x10_0000;
const COUNTER_ADDR = 0x12_0000;

// loop: inc qword [COUNTER_ADDR]; inc rax; jmp loop. RAX counts along with the
// memory counter, so a restore that lost the registers shows as a mismatch.
const LOOP = [
  0x48, 0xff, 0x04, 0x25, ...[0, 8, 16, 24].map((s) => (COUNTER_ADDR >> s) & 0xff),
  0x48, 0xff, 0xc0,
  0xeb, 0xf3,
];

interface Machine {
  vm: NativeVm;
  vcpu: NativeVcpu;
  ram: Uint8Array;
}

/** A one-vCPU VM with RAM at 0; the caller sets the vCPU's state. */
function machine(): Machine {
  const memory = new WebAssembly.Memory({ initial: RAM_PAGES });
  const vm = new addon.Vm();
  vm.setMemory(0, 0, memory.buffer, memory.buffer.byteLength, memory);
  return { vm, vcpu: vm.createVcpu(0), ram: new Uint8Array(memory.buffer) };
}

/** A machine whose vCPU starts the counting loop in 64-bit mode. */
function loopGuest(): Machine {
  const m = machine();
  const longMode = setupLongMode(m.ram);
  m.ram.set(LOOP, CODE_ADDR);
  m.vcpu.setSregs({ ...m.vcpu.getSregs(), ...longMode });
  m.vcpu.setRegs({ ...m.vcpu.getRegs(), rip: BigInt(CODE_ADDR), rflags: 2n });
  return m;
}

const counter = (ram: Uint8Array) => new DataView(ram.buffer).getBigUint64(COUNTER_ADDR, true);

const caps = { xsave, xcrs };

interface Snapshot {
  ram: Uint8Array;
  vcpu: VcpuState;
  vm: VmState;
}

function save({ vm, vcpu, ram }: Machine): Snapshot {
  return {
    ram: ram.slice(),
    vcpu: captureVcpu(vcpu, readableMsrs(vcpu, addon.getMsrIndexList()), caps),
    vm: captureVm(vm),
  };
}

function restore(s: Snapshot): Machine {
  const m = machine();
  m.ram.set(s.ram);
  restoreVm(m.vm, s.vm);
  restoreVcpu(m.vcpu, s.vcpu, caps);
  return m;
}

/** Runs the machine for `ms`, then stops it and returns its state (taken inside onStop, then closed). */
function runFor(m: Machine, ms: number, whileRunning: () => void = () => undefined): Promise<Snapshot> {
  return new Promise((resolve, reject) => {
    m.vm.run(() => undefined, (_vcpu, reason, detail) => {
      try {
        if (reason !== 'stopped') throw new Error(`the guest stopped with ${reason}: ${detail}`);
        resolve(save(m));
      } catch (e) {
        reject(e);
      } finally {
        m.vm.close();
      }
    });
    setTimeout(() => {
      try {
        whileRunning();
      } finally {
        m.vm.stop();
      }
    }, ms);
  });
}

const loopRip = (rip: bigint) => rip >= BigInt(CODE_ADDR) && rip < BigInt(CODE_ADDR + LOOP.length);

function expectEbusy(fn: () => unknown, syscall: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isKvmError(e) && e.code === 'EBUSY' && e.syscall === syscall, String(e));
    return;
  }
  assert.unreachable(`${syscall} succeeded while the vCPU ran`);
}

test('a guest saved mid-loop goes on counting in a new VM', async () => {
  const first = loopGuest();
  const saved = await runFor(first, 100, () => {
    expectEbusy(() => first.vm.getClock(), 'ioctl(KVM_GET_CLOCK)');
    expectEbusy(() => first.vcpu.getVcpuEvents(), 'ioctl(KVM_GET_VCPU_EVENTS)');
  });
  const count = counter(saved.ram);
  assert.ok(count > 0n, 'the guest counted');
  assert.ok(loopRip(saved.vcpu.regs.rip), `rip ${saved.vcpu.regs.rip.toString(16)} is in the loop`);
  assert.ok(saved.vcpu.regs.rax - count <= 1n && count - saved.vcpu.regs.rax <= 1n, 'rax counts with the memory counter');

  const second = restore(saved);
  assert.equal(second.vcpu.getRegs(), saved.vcpu.regs);
  assert.equal(second.vcpu.getLapic(), saved.vcpu.lapic);
  const resumed = await runFor(second, 100);
  const after = counter(resumed.ram);
  assert.ok(after > count, `the counter went on from ${count} (now ${after})`);
  assert.ok(resumed.vcpu.regs.rax > saved.vcpu.regs.rax && after - resumed.vcpu.regs.rax <= 1n && resumed.vcpu.regs.rax - after <= 1n,
    `rax ${resumed.vcpu.regs.rax} went on along with the counter ${after}`);
  assert.ok(loopRip(resumed.vcpu.regs.rip), `rip ${resumed.vcpu.regs.rip.toString(16)} is in the loop`);
});

// out dx, al; inc rax; jmp back. RAX counts the outs the guest completed: an
// out is complete once RIP is past it (KVM completes it on the next KVM_RUN).
const OUT_PORT = 0x80;
const OUT_LOOP = [0x66, 0xba, OUT_PORT, 0x00, 0xee, 0x48, 0xff, 0xc0, 0xeb, 0xfa];
const INC_ADDR = CODE_ADDR + 5;

function outGuest(): Machine {
  const m = machine();
  const longMode = setupLongMode(m.ram);
  m.ram.set(OUT_LOOP, CODE_ADDR);
  m.vcpu.setSregs({ ...m.vcpu.getSregs(), ...longMode });
  m.vcpu.setRegs({ ...m.vcpu.getRegs(), rax: 0n, rip: BigInt(CODE_ADDR), rflags: 2n });
  return m;
}

/** Outs the guest completed, by its own count: RAX, plus one for an out completed just before its inc. */
const completedOuts = (regs: Regs) => Number(regs.rax) + (regs.rip === BigInt(INC_ADDR) ? 1 : 0);

/**
 * Runs the out loop, calls stop() at a point `stopAt` picks (inside onExit or
 * from a timer), and returns the onExit count and the state saved after 'stopped'.
 */
function runOutsUntilStopped(m: Machine, stopAt: (stop: () => void, exits: () => number) => void): Promise<{ exits: number; saved: Snapshot }> {
  return new Promise((resolve, reject) => {
    let exits = 0;
    m.vm.run((_vcpu, kind, addr, _size, isWrite) => {
      if (kind !== 'pio' || addr !== OUT_PORT || !isWrite) reject(new Error(`unexpected ${kind} access at ${addr}`));
      exits++;
      return undefined;
    }, (_vcpu, reason, detail) => {
      try {
        if (reason !== 'stopped') throw new Error(`the guest stopped with ${reason}: ${detail}`);
        resolve({ exits, saved: save(m) });
      } catch (e) {
        reject(e);
      } finally {
        m.vm.close();
      }
    });
    stopAt(() => m.vm.stop(), () => exits);
  });
}

/** A random stop point: inside the nth onExit, or from a timer or setImmediate while exits go on. */
function randomStop(random: () => number): (stop: () => void, exits: () => number) => void {
  const choice = Math.floor(random() * 3);
  return (stop, exits) => {
    if (choice === 0) {
      const target = 1 + Math.floor(random() * 50);
      const poll = () => (exits() >= target ? stop() : setImmediate(poll));
      setImmediate(poll);
    } else if (choice === 1) {
      setTimeout(stop, random() * 3);
    } else {
      let ticks = Math.floor(random() * 20);
      const tick = () => (ticks-- > 0 ? setImmediate(tick) : stop());
      tick();
    }
  };
}

test('stop() loses and repeats no port access: the saved state continues the count exactly', async () => {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 100; i++) {
    const first = await runOutsUntilStopped(outGuest(), randomStop(random));
    const done = completedOuts(first.saved.vcpu.regs);
    assert.is(first.exits, done,
      `iteration ${i}: ${first.exits} onExit calls, the guest completed ${done} outs (rax ${first.saved.vcpu.regs.rax}, rip 0x${first.saved.vcpu.regs.rip.toString(16)})`);
    if (i % 5 !== 0) continue;
    const second = await runOutsUntilStopped(restore(first.saved), randomStop(random));
    const total = completedOuts(second.saved.vcpu.regs);
    assert.is(first.exits + second.exits, total, `iteration ${i}: the restored guest went on counting from ${done}`);
  }
});

test('every state accessor round-trips: get, set, get', () => {
  const { vm, vcpu } = loopGuest();
  try {
    const roundTrip = (name: string, get: () => Buffer, set: (b: Buffer) => void) => {
      const before = get();
      set(before);
      assert.equal(get(), before, name);
    };
    roundTrip('vcpu events', () => vcpu.getVcpuEvents(), (b) => vcpu.setVcpuEvents(b));
    roundTrip('fpu', () => vcpu.getFpu(), (b) => vcpu.setFpu(b));
    if (xsave) roundTrip('xsave', () => vcpu.getXsave(), (b) => vcpu.setXsave(b));
    if (xcrs) roundTrip('xcrs', () => vcpu.getXcrs(), (b) => vcpu.setXcrs(b));
    roundTrip('debug registers', () => vcpu.getDebugRegs(), (b) => vcpu.setDebugRegs(b));
    roundTrip('lapic', () => vcpu.getLapic(), (b) => vcpu.setLapic(b));
    for (const chip of [0, 1, 2] as IrqchipId[]) roundTrip(`irqchip ${chip}`, () => vm.getIrqchip(chip), (b) => vm.setIrqchip(chip, b));
    // KVM_SET_PIT2 reloads each channel's count, stamping it with the current
    // time: count_load_time (offset 16 of each 24-byte kvm_pit_channel_state) moves on.
    const withoutLoadTimes = (pit: Buffer) => {
      const copy = Buffer.from(pit);
      for (let channel = 0; channel < 3; channel++) copy.writeBigInt64LE(0n, channel * 24 + 16);
      return copy;
    };
    roundTrip('pit', () => withoutLoadTimes(vm.getPit2()), (b) => vm.setPit2(b));
    vcpu.setMpState(3);
    assert.is(vcpu.getMpState(), 3, 'halted');
    vcpu.setMpState(0);
    assert.is(vcpu.getMpState(), 0, 'runnable');
    // The clock runs on: it comes back at least where it was set.
    const clock = vm.getClock();
    vm.setClock(clock);
    assert.ok(vm.getClock().readBigUint64LE(0) >= clock.readBigUint64LE(0));
    assert.is(vm.getPit2().length, 112);
    assert.is(vm.getIrqchip(0).length, 16);
    assert.is(vm.getIrqchip(2).length, 216);
    assert.is(vm.getClock().length, 48);
  } finally {
    vm.close();
  }
});

test('bad blobs and chip ids are refused, naming the field', () => {
  const { vm, vcpu } = machine();
  try {
    const wrongSize = (fn: () => unknown, syscall: string, field: string, size: number) => {
      try {
        fn();
      } catch (e) {
        assert.ok(isKvmError(e), String(e));
        assert.is(e.code, 'EINVAL');
        assert.is(e.syscall, syscall);
        assert.match(e.message, `${field} must be ${size} bytes, got 3`);
        return;
      }
      assert.unreachable(`${syscall} accepted 3 bytes`);
    };
    const short = Buffer.alloc(3);
    wrongSize(() => vcpu.setVcpuEvents(short), 'ioctl(KVM_SET_VCPU_EVENTS)', 'vcpu events', 64);
    wrongSize(() => vcpu.setFpu(short), 'ioctl(KVM_SET_FPU)', 'fpu state', 416);
    wrongSize(() => vcpu.setXsave(short), 'ioctl(KVM_SET_XSAVE)', 'xsave state', 4096);
    wrongSize(() => vcpu.setXcrs(short), 'ioctl(KVM_SET_XCRS)', 'xcrs', 392);
    wrongSize(() => vcpu.setDebugRegs(short), 'ioctl(KVM_SET_DEBUGREGS)', 'debug registers', 128);
    wrongSize(() => vcpu.setLapic(short), 'ioctl(KVM_SET_LAPIC)', 'lapic state', 1024);
    wrongSize(() => vm.setIrqchip(1, short), 'ioctl(KVM_SET_IRQCHIP)', 'pic state', 16);
    wrongSize(() => vm.setIrqchip(2, short), 'ioctl(KVM_SET_IRQCHIP)', 'ioapic state', 216);
    wrongSize(() => vm.setPit2(short), 'ioctl(KVM_SET_PIT2)', 'pit state', 112);
    wrongSize(() => vm.setClock(short), 'ioctl(KVM_SET_CLOCK)', 'clock data', 48);
    assert.throws(() => vcpu.setFpu([1, 2] as unknown as Buffer), (e: Error) => e instanceof TypeError && /fpu state must be a Buffer/.test(e.message));
    assert.throws(() => vm.getIrqchip(3 as IrqchipId), /chip id must be an integer in \[0, 2\], got 3/);
    // The kernel checks what it can: unknown clock flags.
    const clock = vm.getClock();
    clock.writeUInt32LE(0x8000_0000, 8);
    assert.throws(() => vm.setClock(clock), (e: Error) => isKvmError(e) && e.code === 'EINVAL' && /flags 0x80000000/.test(e.message));
  } finally {
    vm.close();
  }
  assert.throws(() => vm.getPit2(), (e: Error) => isKvmError(e) && e.code === 'EBADF');
});

test.run();
