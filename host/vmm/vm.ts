// One microVM: guest RAM in the device models' Wasm memory, the kernel loaded
// into it, vCPUs configured from a CPU template, and every emulated exit
// handed to the Wasm device models. The run ends with one VmExit that says why.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import type { ExitHandler, NativeVcpu, NativeVm, Regs, StopReason } from '../native.js';
import { applyTemplate, defaultTemplate } from '../cpu/template.js';
import { vcpuCpuid } from '../cpu/cpuid.js';
import { detectKernel, loadLinux } from '../boot/loader.js';
import { HIGH_RAM_BASE, lowRamBytes } from '../boot/layout.js';
import { loadDevices, type Devices } from '../wasm/devices.js';
import {
  validateShares, validateVcpuLimit, validateVmConfig, validateVsockConfig, virtioDevices, type ShareConfig, type VmConfig,
  type VsockConfig,
} from './config.js';
import { virtioCmdline, VirtioDevices, type VirtioDeviceConfig } from './virtio.js';
import type { DiskConfig } from '../block/disk.js';
import { isPvmHost, openKvm, type KvmHost } from './kvm.js';
import { captureVcpu, captureVm, readableMsrs, restoreVcpu, restoreVm } from '../snapshot/machine_state.js';
import { memoryFile, readManifest, readState, sha256, writeSnapshot, type SnapshotManifest } from '../snapshot/format.js';
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
  /** Timing traces to print on standard error (default: those $HAKO_TRACE names, comma-separated). */
  trace?: readonly string[];
  /** Whether this host is PVM, as the configuration says (hypervisor.pvm); detected when undefined. */
  pvmHost?: boolean;
}

/** What a restore may change about the snapshot's VM. */
export interface RestoreOptions extends VmOptions {
  /**
   * Images to attach instead of the snapshot's disks, in the same order: as
   * many, each with the same read-only mode (the guest knows it). A disk of
   * another size reaches the guest as a capacity change.
   */
  disks?: DiskConfig[];
  /**
   * The host side of the snapshot's vsock device: where this VM listens and the guest's CID (each clone
   * can have its own). Connections the snapshot held are dropped and the guest told with a transport
   * reset. Without it the device stays, but nothing on the host reaches it.
   */
  vsock?: VsockConfig;
  /**
   * The directories behind the snapshot's virtio-fs devices, in the same order and with the same tags
   * (a template's slot: tag "hako-shared"). Each entry says whether its share is read-only; a slot the
   * snapshot's VM had read-only stays so (its device model refuses writes), and the cache mode stays the
   * snapshot's. Without it the devices stay, but every request fails with ENODEV.
   */
  shares?: ShareConfig[];
}

const MIB = 1024 * 1024;
/** The KVM slot of guest RAM above the MMIO gap (slot 0 is the Wasm memory's low RAM). */
const HIGH_RAM_SLOT = 1;

/** What a VM is made of, as a snapshot's manifest records it. */
type VmIdentity = Pick<SnapshotManifest, 'vm' | 'inputs'>;

/** How assemble() fills a new VM: by booting a kernel or by restoring a snapshot. */
interface MachineSetup {
  /** Fills guest RAM (the low window `ram` of `memory`) before it is registered with KVM. */
  loadRam(ram: Uint8Array, memory: WebAssembly.Memory): void;
  /** Registers the `bytes` of RAM above the MMIO gap; without it, fresh anonymous memory. */
  addHighRam?(kvmVm: NativeVm, bytes: number): void;
  /** Sets vCPU `id`'s state after its CPUID. */
  initVcpu(vcpu: NativeVcpu, id: number): void;
  /** Runs once all vCPUs exist. */
  finish?(kvmVm: NativeVm, devices: Devices, virtio: VirtioDevices): void;
}

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
  /** vCPUs of the current run that have not reported their stop yet. */
  private running = 0;
  private finished: Promise<VmExit> | undefined;
  private resolveFinished!: (exit: VmExit) => void;
  /** Set while snapshot() waits for every vCPU to leave the guest. */
  private pausing: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private pendingConsole: number[] = [];

  private constructor(
    private readonly kvm: KvmHost,
    private readonly kvmVm: NativeVm,
    private readonly vcpus: NativeVcpu[],
    private readonly devices: Devices,
    private readonly virtio: VirtioDevices,
    private readonly options: VmOptions,
    /** What a snapshot of this VM records about it. */
    private readonly identity: VmIdentity,
  ) {}

  /** Boots `config.kernel` in a new VM; call run() to start it. */
  static async create(config: VmConfig, options: VmOptions = {}): Promise<Vm> {
    // Everything that can be checked without KVM first, so bad input is named
    // as such even on a host without /dev/kvm.
    validateVmConfig(config);
    const kernel = readInput(config.kernel, 'kernel');
    detectKernel(kernel, config.kernel);
    const initrd = config.initrd === undefined ? undefined : readInput(config.initrd, 'initrd');
    const kvm = openKvm();
    validateVcpuLimit(config.vcpus, kvm.maxVcpus);
    const ramBytes = config.memoryMiB * MIB;
    const devices = virtioDevices(config);
    const cmdline = [config.cmdline, ...virtioCmdline(devices)].join(' ');
    const identity: VmIdentity = {
      vm: { vcpus: config.vcpus, memoryMiB: config.memoryMiB, cpuTemplate: config.cpuTemplate, cmdline, devices },
      inputs: { kernel: sha256(kernel), ...(initrd ? { initrd: sha256(initrd) } : {}) },
    };
    const msrs = bootMsrs(kvm.addon.getMsrIndexList());
    let boot: ReturnType<typeof loadLinux>;
    return Vm.assemble(kvm, identity, options, {
      loadRam: (ram) => {
        boot = loadLinux(ram, {
          kernel, kernelName: config.kernel, initrd, initrdName: config.initrd, cmdline, ramBytes, vcpus: config.vcpus,
        });
      },
      initVcpu: (vcpu, id) => {
        vcpu.setMsrs(msrs);
        vcpu.resetFpu();
        vcpu.setLapic(configureLapicLints(vcpu.getLapic()));
        if (id === 0) {
          vcpu.setSregs({ ...vcpu.getSregs(), ...boot.sregs });
          vcpu.setRegs({ ...zeroRegs(), ...boot.regs });
        }
      },
    });
  }

  /**
   * A new VM that continues where the snapshot in `dir` stopped: guest RAM is
   * a copy-on-write mapping of the snapshot's memory file, so it starts
   * without copying and clones share unwritten pages. Call run() to start it.
   */
  static async restore(dir: string, options: RestoreOptions = {}): Promise<Vm> {
    const manifest = readManifest(dir);
    const withDisks = options.disks ? replaceDisks(dir, manifest.vm.devices, options.disks) : manifest.vm.devices;
    const devices = replaceShares(dir, replaceVsock(dir, withDisks, options.vsock), options.shares);
    const state = readState(dir);
    const kvm = openKvm();
    const pvm = options.pvmHost ?? isPvmHost();
    if (manifest.host.pvm !== pvm) {
      throw new HakoError('BAD_SNAPSHOT', `snapshot ${dir} was made on a ${manifest.host.pvm ? 'PVM' : 'non-PVM'} host; this host is ${pvm ? 'PVM' : 'not PVM'}`);
    }
    if (manifest.vm.cpuTemplate !== defaultTemplate(pvm)) {
      throw new HakoError('BAD_SNAPSHOT', `snapshot ${dir} was made with CPU template ${manifest.vm.cpuTemplate}; this host runs ${defaultTemplate(pvm)}`);
    }
    if (state.vcpus.length !== manifest.vm.vcpus) throw new HakoError('BAD_SNAPSHOT', `snapshot ${dir}: state for ${state.vcpus.length} vCPUs, manifest says ${manifest.vm.vcpus}`);
    validateVcpuLimit(manifest.vm.vcpus, kvm.maxVcpus);
    const caps = kvm.addon.kvmInfo();
    return Vm.assemble(kvm, { vm: { ...manifest.vm, devices }, inputs: manifest.inputs }, options, {
      loadRam: (ram, memory) => {
        if (manifest.vm.memoryMiB * MIB !== manifest.memory.bytes) {
          throw new HakoError('BAD_SNAPSHOT', `snapshot ${dir}: ${manifest.memory.bytes} bytes of memory for ${manifest.vm.memoryMiB} MiB of RAM`);
        }
        kvm.addon.mapMemoryFile(memory.buffer, ram.byteLength, memoryFile(dir), memory);
      },
      // The memory file holds low RAM first, then the high RAM, which maps copy-on-write like the low part.
      addHighRam: (kvmVm, bytes) => kvmVm.addFileMemory(HIGH_RAM_SLOT, HIGH_RAM_BASE, memoryFile(dir),
        lowRamBytes(manifest.memory.bytes), bytes),
      initVcpu: (vcpu, id) => {
        if (vcpu.getTscKhz() !== manifest.host.tscKhz) {
          throw new HakoError('BAD_SNAPSHOT', `snapshot ${dir} was made with a ${manifest.host.tscKhz} kHz TSC; this host's is ${vcpu.getTscKhz()} kHz`);
        }
        restoreVcpu(vcpu, state.vcpus[id]!, caps);
      },
      finish: (kvmVm, models, virtio) => {
        restoreVm(kvmVm, state.vm);
        models.restoreState(state.devices);
        // After the device state: the reset drops the connections the snapshot's state holds.
        const vsock = devices.find((d) => d.kind === 'vsock');
        if (vsock?.kind === 'vsock') virtio.resetVsock(vsock.cid);
        models.virtioResumed();
      },
    });
  }

  /** Creates devices, memory, KVM VM and vCPUs; `setup` fills RAM and vCPU state (boot or restore). */
  private static async assemble(kvm: KvmHost, identity: VmIdentity, options: VmOptions, setup: MachineSetup): Promise<Vm> {
    // Device callbacks need the Vm; bind them late through these boxes.
    let vm: Vm | undefined;
    let virtio: VirtioDevices | undefined;
    const devices = await loadDevices({
      irqLine: (gsi, level) => vm?.kvmVm.setIrqLine(gsi, level),
      consoleWrite: (byte) => vm?.consoleByte(byte),
      resetRequest: () => vm?.finish({ kind: 'reboot', detail: 'the guest requested a reset (i8042)' }),
      guestExit: (code) => vm?.finish(code === 0
        ? { kind: 'poweroff', detail: 'the guest powered off' }
        : { kind: 'panic', detail: `the guest kernel panicked (exit port value ${code})` }),
      wallClockSeconds: () => Date.now() / 1000,
      irqPulse: (gsi) => virtio?.pulse(gsi),
      fillRandom: (gpa, length) => kvm.addon.getRandom(devices.memory.buffer, gpa, length),
      ioSubmit: (records, count) => virtio?.submit(records, count),
      get vsock() { return virtio?.vsock; },
      get fs() { return virtio?.fs; },
    });

    const { vcpus: vcpuCount, memoryMiB, cpuTemplate } = identity.vm;
    const ramBytes = memoryMiB * MIB;
    const lowBytes = lowRamBytes(ramBytes);
    const kvmVm = new kvm.addon.Vm();
    try {
      setup.loadRam(new Uint8Array(devices.memory.buffer, 0, lowBytes), devices.memory);
      kvmVm.setMemory(0, 0, devices.memory.buffer, lowBytes, devices.memory);
      if (ramBytes > lowBytes) {
        if (setup.addHighRam) setup.addHighRam(kvmVm, ramBytes - lowBytes);
        else kvmVm.addAnonymousMemory(HIGH_RAM_SLOT, HIGH_RAM_BASE, ramBytes - lowBytes);
      }
      // Virtio devices reach guest RAM through the Wasm memory only: the low window.
      devices.setGuestRamBytes(lowBytes);
      virtio = VirtioDevices.attach(kvm.addon, kvmVm, devices, identity.vm.devices, lowBytes,
        (e) => vm?.finish({ kind: 'crash', detail: `the vsock device model failed: ${e.message}` }));

      const cpuid = applyTemplate(kvm.addon.getSupportedCpuid(), cpuTemplate);
      const vcpus: NativeVcpu[] = [];
      for (let id = 0; id < vcpuCount; id++) {
        const vcpu = kvmVm.createVcpu(id);
        vcpu.setCpuid(vcpuCpuid(cpuid, { apicId: id, vcpuCount, tscKhz: vcpu.getTscKhz() }));
        setup.initVcpu(vcpu, id);
        vcpus.push(vcpu);
      }
      setup.finish?.(kvmVm, devices, virtio);
      vm = new Vm(kvm, kvmVm, vcpus, devices, virtio, options, identity);
      return vm;
    } catch (e) {
      virtio?.close();
      kvmVm.close();
      throw e;
    }
  }

  /**
   * Pauses the running guest at a consistent point (every vCPU out of
   * KVM_RUN, block I/O drained), saves it to `dir` (a new directory) and lets
   * it continue. Restore it with Vm.restore(dir).
   */
  async snapshot(dir: string): Promise<void> {
    if (this.running === 0 || this.exit) throw new HakoError('INVALID_ARGUMENT', 'only a running VM can be snapshotted');
    if (this.pausing) throw new HakoError('INVALID_ARGUMENT', 'a snapshot of this VM is already being taken');
    await new Promise<void>((resolve, reject) => {
      this.pausing = { resolve, reject };
      this.kvmVm.stop();
    });
    try {
      const caps = this.kvm.addon.kvmInfo();
      const msrIndices = readableMsrs(this.vcpus[0]!, this.kvm.addon.getMsrIndexList());
      const ramBytes = this.identity.vm.memoryMiB * MIB;
      const lowBytes = lowRamBytes(ramBytes);
      // Block requests still in flight complete into guest RAM first: the saved rings then hold no half-done request.
      this.virtio.drain();
      writeSnapshot(dir, {
        ...this.identity,
        host: { pvm: this.options.pvmHost ?? isPvmHost(), tscKhz: this.vcpus[0]!.getTscKhz() },
      }, {
        low: new Uint8Array(this.devices.memory.buffer, 0, lowBytes),
        highBytes: ramBytes - lowBytes,
        writeHigh: (fd, fileOffset) => this.kvmVm.writeSlotToFile(HIGH_RAM_SLOT, fd, fileOffset),
      }, {
        vcpus: this.vcpus.map((v) => captureVcpu(v, msrIndices, caps)),
        vm: captureVm(this.kvmVm),
        devices: this.devices.saveState(),
      });
    } finally {
      // Resumes; if stop() came meanwhile, the vCPUs stop at once and run() resolves.
      this.startVcpus();
    }
  }

  /** Starts the vCPUs; resolves when the VM has stopped and released its KVM resources. */
  run(): Promise<VmExit> {
    if (this.finished) throw new HakoError('INVALID_ARGUMENT', 'this VM has already been started');
    this.finished = new Promise((resolve) => { this.resolveFinished = resolve; });
    this.startVcpus();
    this.virtio.kickAll();
    // For `npm run bench -- boot`: milliseconds from process start to the first KVM_RUN.
    if ((this.options.trace ?? process.env.HAKO_TRACE?.split(',') ?? []).includes('startup')) {
      process.stderr.write(`hako-trace: vcpus started ${performance.now().toFixed(1)} ms\n`);
    }
    return this.finished;
  }

  private startVcpus(): void {
    this.running = this.vcpus.length;
    this.kvmVm.run(this.onExit, this.onStop);
  }

  private readonly onExit: ExitHandler = (_vcpu, kind, addr, size, isWrite, value) => {
    try {
      return this.devices.access(kind, addr, size, isWrite, value);
    } catch (e) {
      this.finish({ kind: 'crash', detail: `device model failed on ${kind} ${isWrite ? 'write' : 'read'} at 0x${addr.toString(16)}: ${(e as Error).message}` });
      return 0n;
    }
  };

  private readonly onStop = (vcpu: number, reason: StopReason, detail: string): void => {
    if (reason !== 'stopped') this.finish(exitFromStop(vcpu, reason, detail));
    if (--this.running > 0) return;
    this.flushConsole();
    const pausing = this.pausing;
    this.pausing = undefined;
    if (pausing && !this.exit) {
      pausing.resolve();
      return;
    }
    pausing?.reject(new HakoError('VM_FAILED', `the guest stopped before the snapshot: ${this.exit?.detail}`));
    // Never release guest RAM or image files under I/O still in flight: virtio drains first.
    this.virtio.close();
    this.kvmVm.close();
    this.resolveFinished(this.exit ?? { kind: 'stopped', detail: 'all vCPUs stopped' });
  };

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

/** The snapshot's devices with its disks replaced by `disks`, which must match them in number and mode. */
function replaceDisks(dir: string, devices: VirtioDeviceConfig[], disks: DiskConfig[]): VirtioDeviceConfig[] {
  const count = devices.filter((d) => d.kind === 'block').length;
  if (disks.length !== count) {
    throw new HakoError('INVALID_ARGUMENT', `snapshot ${dir} has ${count} disk(s); the restore gave ${disks.length}`);
  }
  let next = 0;
  return devices.map((d) => {
    if (d.kind !== 'block') return d;
    const disk = disks[next++]!;
    if (disk.readOnly !== d.readOnly) {
      throw new HakoError('INVALID_ARGUMENT', `disk ${next} of snapshot ${dir} is ${d.readOnly ? 'read-only' : 'writable'}; ${disk.path} must be attached the same way`);
    }
    return { kind: 'block', path: disk.path, readOnly: disk.readOnly };
  });
}

/**
 * The snapshot's devices with the vsock device's host side from `vsock` (none without it: the
 * snapshot's socket path belongs to the VM that was snapshotted).
 */
function replaceVsock(dir: string, devices: VirtioDeviceConfig[], vsock: VsockConfig | undefined): VirtioDeviceConfig[] {
  if (vsock) {
    validateVsockConfig(vsock);
    if (!devices.some((d) => d.kind === 'vsock')) {
      throw new HakoError('INVALID_ARGUMENT', `snapshot ${dir} has no vsock device; it cannot be restored with vsock options`);
    }
  }
  return devices.map((d) => (d.kind !== 'vsock' ? d
    : vsock ? { kind: 'vsock', cid: vsock.cid, socketPath: vsock.socketPath } : { kind: 'vsock', cid: d.cid }));
}

/**
 * The snapshot's devices with the directories of `shares` behind its virtio-fs devices (none without it:
 * the snapshot's paths belong to the VM that was snapshotted). Host fds do not survive a snapshot: the
 * device model answers ESTALE for every file the guest had open, and the shares are opened anew.
 */
function replaceShares(dir: string, devices: VirtioDeviceConfig[], shares: ShareConfig[] | undefined): VirtioDeviceConfig[] {
  const slots = devices.filter((d) => d.kind === 'fs');
  if (shares) {
    validateShares(shares);
    if (shares.length !== slots.length) {
      throw new HakoError('INVALID_ARGUMENT', `snapshot ${dir} has ${slots.length} shared-directory slot(s); the restore gave ${shares.length}`);
    }
  }
  let next = 0;
  return devices.map((d) => {
    if (d.kind !== 'fs') return d;
    const share = shares?.[next++];
    if (!share) return { kind: 'fs', tag: d.tag, readOnly: d.readOnly, cache: d.cache };
    if (share.tag !== d.tag) {
      throw new HakoError('INVALID_ARGUMENT', `shared-directory slot ${next} of snapshot ${dir} has tag ${JSON.stringify(d.tag)}; ${share.path} was given tag ${JSON.stringify(share.tag)}`);
    }
    if (d.readOnly && !share.readOnly) {
      throw new HakoError('INVALID_ARGUMENT', `shared-directory slot ${next} (${d.tag}) of snapshot ${dir} is read-only; ${share.path} must be shared read-only`);
    }
    return { kind: 'fs', path: share.path, tag: d.tag, readOnly: share.readOnly ?? false, cache: d.cache };
  });
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
