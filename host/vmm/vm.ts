// One microVM: guest RAM in the device models' Wasm memory, the kernel loaded
// into it, vCPUs configured from a CPU template, and every emulated exit
// handed to the Wasm device models. The run ends with one VmExit that says why.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import type { ExitHandler, NativeVcpu, NativeVm, Regs, StopReason } from '../native.js';
import { applyTemplate } from '../cpu/template.js';
import { vcpuCpuid } from '../cpu/cpuid.js';
import { detectKernel, loadLinux } from '../boot/loader.js';
import { HIGH_RAM_BASE, lowRamBytes } from '../boot/layout.js';
import { loadDevices, type Devices } from '../wasm/devices.js';
import { validateVcpuLimit, validateVmConfig, type VmConfig } from './config.js';
import { openKvm } from './kvm.js';
import { bootMsrs, configureLapicLints } from './vcpu_setup.js';

export type VmExitKind =
  | 'poweroff'     // the guest powered off
  | 'reboot'       // the guest asked for a reset (i8042 or KVM system event); hako stops the VM
  | 'panic'        // the guest kernel reported a panic
  | 'triple-fault' // KVM_EXIT_SHUTDOWN
  | 'crash'        // an exit hako cannot handle, or a KVM failure
  | 'stopped';     // stop() was called (e.g. Ctrl-C)

export interface VmExit {
  kind: VmExitKind;
  /** One line for humans: why the VM stopped. */
  detail: string;
}

export interface VmOptions {
  /** Receives the guest's serial console output. */
  console?: (chunk: Buffer) => void;
}

const MIB = 1024 * 1024;

function readInput(path: string, what: string): Uint8Array {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied'
      : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new HakoError('BAD_KERNEL', `cannot read ${what} ${path}: ${why}`, { cause: e });
  }
}

const zeroRegs = (): Regs => ({
  rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n,
  r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
  rip: 0n, rflags: 2n,
});

export class Vm {
  private exit: VmExit | undefined;
  private running = 0;
  private finished!: Promise<VmExit>;
  private pendingConsole: number[] = [];

  private constructor(
    private readonly kvmVm: NativeVm,
    private readonly vcpus: NativeVcpu[],
    private readonly devices: Devices,
    private readonly options: VmOptions,
  ) {}

  static async create(config: VmConfig, options: VmOptions = {}): Promise<Vm> {
    // Everything that can be checked without KVM first, so bad input is named
    // as such even on a host without /dev/kvm.
    validateVmConfig(config);
    const kernel = readInput(config.kernel, 'kernel');
    detectKernel(kernel, config.kernel);
    const initrd = config.initrd === undefined ? undefined : readInput(config.initrd, 'initrd');
    const kvm = openKvm();
    validateVcpuLimit(config.vcpus, kvm.maxVcpus);

    // Device callbacks need the Vm; bind them late through this box.
    let vm: Vm | undefined;
    const devices = await loadDevices({
      irqLine: (gsi, level) => vm?.kvmVm.setIrqLine(gsi, level),
      consoleWrite: (byte) => vm?.consoleByte(byte),
      resetRequest: () => vm?.finish({ kind: 'reboot', detail: 'the guest requested a reset (i8042)' }),
      guestExit: (code) => vm?.finish(code === 0
        ? { kind: 'poweroff', detail: 'the guest powered off' }
        : { kind: 'panic', detail: `the guest kernel panicked (exit port value ${code})` }),
      wallClockSeconds: () => Date.now() / 1000,
    });

    const ramBytes = config.memoryMiB * MIB;
    const lowBytes = lowRamBytes(ramBytes);
    const kvmVm = new kvm.addon.Vm();
    try {
      kvmVm.setMemory(0, 0, devices.memory.buffer, lowBytes, devices.memory);
      if (ramBytes > lowBytes) kvmVm.addAnonymousMemory(1, HIGH_RAM_BASE, ramBytes - lowBytes);

      const boot = loadLinux(new Uint8Array(devices.memory.buffer, 0, lowBytes), {
        kernel, kernelName: config.kernel, initrd, initrdName: config.initrd, cmdline: config.cmdline, ramBytes, vcpus: config.vcpus,
      });

      const cpuid = applyTemplate(kvm.addon.getSupportedCpuid(), config.cpuTemplate);
      const msrs = bootMsrs(kvm.addon.getMsrIndexList());
      const vcpus: NativeVcpu[] = [];
      for (let id = 0; id < config.vcpus; id++) {
        const vcpu = kvmVm.createVcpu(id);
        vcpu.setCpuid(vcpuCpuid(cpuid, { apicId: id, vcpuCount: config.vcpus, tscKhz: vcpu.getTscKhz() }));
        vcpu.setMsrs(msrs);
        vcpu.resetFpu();
        vcpu.setLapic(configureLapicLints(vcpu.getLapic()));
        if (id === 0) {
          vcpu.setSregs({ ...vcpu.getSregs(), ...boot.sregs });
          vcpu.setRegs({ ...zeroRegs(), ...boot.regs });
        }
        vcpus.push(vcpu);
      }
      vm = new Vm(kvmVm, vcpus, devices, options);
      return vm;
    } catch (e) {
      kvmVm.close();
      throw e;
    }
  }

  /** Starts the vCPUs; resolves when the VM has stopped and released its KVM resources. */
  run(): Promise<VmExit> {
    if (this.running > 0 || this.exit) throw new HakoError('INVALID_ARGUMENT', 'this VM has already been started');
    this.running = this.vcpus.length;
    this.finished = new Promise((resolve) => {
      const onExit: ExitHandler = (_vcpu, kind, addr, size, isWrite, value) => {
        try {
          return this.devices.access(kind, addr, size, isWrite, value);
        } catch (e) {
          this.finish({ kind: 'crash', detail: `device model failed on ${kind} ${isWrite ? 'write' : 'read'} at 0x${addr.toString(16)}: ${(e as Error).message}` });
          return 0n;
        }
      };
      const onStop = (vcpu: number, reason: StopReason, detail: string) => {
        if (reason !== 'stopped') this.finish(exitFromStop(vcpu, reason, detail));
        if (--this.running > 0) return;
        this.flushConsole();
        this.kvmVm.close();
        resolve(this.exit ?? { kind: 'stopped', detail: 'all vCPUs stopped' });
      };
      this.kvmVm.run(onExit, onStop);
      // For `npm run bench -- boot`: milliseconds from process start to the first KVM_RUN.
      if (process.env.HAKO_TRACE?.split(',').includes('startup')) {
        process.stderr.write(`hako-trace: vcpus started ${performance.now().toFixed(1)} ms\n`);
      }
    });
    return this.finished;
  }

  /** Stops the guest (idempotent); run() then resolves with kind 'stopped' unless the guest stopped first. */
  stop(detail = 'stopped by the host'): void {
    this.finish({ kind: 'stopped', detail });
  }

  /** Queues console input for the guest's COM1. */
  sendConsoleInput(data: Uint8Array): void {
    this.devices.consoleInput(data);
  }

  private finish(exit: VmExit): void {
    this.exit ??= exit;
    this.kvmVm.stop();
  }

  private consoleByte(byte: number): void {
    if (this.pendingConsole.length === 0) setImmediate(() => this.flushConsole());
    this.pendingConsole.push(byte);
  }

  private flushConsole(): void {
    if (this.pendingConsole.length === 0) return;
    const chunk = Buffer.from(this.pendingConsole);
    this.pendingConsole = [];
    (this.options.console ?? ((c) => process.stdout.write(c)))(chunk);
  }
}

function exitFromStop(vcpu: number, reason: StopReason, detail: string): VmExit {
  const where = `vCPU ${vcpu}${detail ? `: ${detail}` : ''}`;
  switch (reason) {
    case 'shutdown': return { kind: 'triple-fault', detail: `the guest triple-faulted (${where})` };
    case 'reset': return { kind: 'reboot', detail: `the guest requested a reset (${where})` };
    case 'poweroff': return { kind: 'poweroff', detail: 'the guest powered off' };
    case 'internal-error': return { kind: 'crash', detail: `KVM internal error (${where})` };
    case 'fail-entry': return { kind: 'crash', detail: `KVM could not enter the guest (${where})` };
    case 'unhandled': return { kind: 'crash', detail: `unhandled VM exit (${where})` };
    case 'error': return { kind: 'crash', detail: `KVM_RUN failed (${where})` };
    case 'stopped': return { kind: 'stopped', detail: where };
  }
}
