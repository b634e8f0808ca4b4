// `hako boot`: boot a kernel in a microVM with its serial console on this terminal.
import path from 'node:path';
import { bundledCmdline, bundledGuest } from '../guest.js';
import { HakoError } from '../errors.js';
import { CPU_TEMPLATES, defaultTemplate, type CpuTemplateName } from '../cpu/template.js';
import { Vm, type VmExit } from '../vmm/vm.js';
import { templateRoot } from '../template/cache.js';
import { checkInitMode, startClone } from '../template/clone.js';
import { ensureTemplate } from '../template/create.js';
import { bundledTemplateSpec, TEMPLATE_SHARE_TAG } from '../template/spec.js';
import { isPvmHost } from '../vmm/kvm.js';
import { platformCmdline } from '../vmm/cmdline.js';
import { parseDiskOption } from '../block/disk.js';
import { MIN_GUEST_CID, validateShares, validateVsockConfig, type ShareConfig } from '../vmm/config.js';
import { integerOption, parse } from './args.js';

/** Hybrid vsock CIDs are private to each VM: every guest can have the first one. */
const DEFAULT_GUEST_CID = MIN_GUEST_CID;

export const bootHelp = `Usage: hako boot [options]

Boots a Linux kernel in a KVM microVM; the guest's serial console is this
terminal. Without options it boots the bundled guest that guest/ builds.

The bundled guest (no --kernel, --initrd, --cmdline or --disk; the host's default
CPU template) starts as a clone of a VM template, a snapshot taken once its
init was up, in seconds. The template for the VM's
shape is made first when missing (one cold boot; see 'hako template --help').

Options:
  --kernel FILE          ELF vmlinux (PVH entry) or bzImage (default: bundled)
  --initrd FILE          initramfs (default: bundled, or none with --kernel)
  --cmdline STR          kernel command line (default: the bundled guest's);
                         hako appends hako.exit_port=, and hako.pvm=1 on PVM hosts
  --vcpus N              number of vCPUs (default 1)
  --memory MiB           guest RAM, 64 to 4096 (default 256)
  --cpu-template NAME    host | compatible (default: compatible on PVM hosts, else host)
  --disk PATH[,ro]       attach a raw image file as a virtio-blk disk; repeat for
                         more (the first is /dev/vda). With ,ro the guest's writes
                         fail and the file is never modified
  --vsock PATH           add a virtio-vsock device (hybrid vsock): a host program
                         connects to the Unix socket PATH and sends the line
                         "CONNECT <port>" to reach guest port <port> (answer:
                         "OK <n>"); the guest's connections to host port P go
                         to PATH_P
  --cid N                the guest's vsock context ID, 3 to 4294967294 (default
                         ${DEFAULT_GUEST_CID}; needs --vsock)
  --share DIR[:ro]       share the host directory DIR with the guest (virtio-fs,
                         tag "${TEMPLATE_SHARE_TAG}": mount -t virtiofs ${TEMPLATE_SHARE_TAG} /mnt);
                         with :ro the guest's writes fail with EROFS
  --no-template          cold-boot the bundled guest instead of cloning a template
  --init-mode MODE       the bundled guest's init mode (guest/initramfs/init), e.g.
                         idle (print 'hako-init: idle', sleep until stopped) or
                         check; passed as hako.init=MODE when cold-booting and
                         on the clone line to a clone (default: power off)
  -h, --help             show this help

Exit status: 0 when the guest powers off or reboots, 1 when it panics,
triple-faults or stops on an exit hako cannot handle, 2 on bad input,
130 when interrupted with Ctrl-C, 141 when standard output closes.`;

/** For a kernel given with --kernel and no --cmdline. */
const DEFAULT_CMDLINE = 'console=ttyS0 reboot=k panic=-1';

/** `--share DIR[:ro]` (or DIR:rw) as the VM's one shared directory. */
export function parseShareOption(value: string): ShareConfig {
  const colon = value.lastIndexOf(':');
  const flag = colon < 0 ? '' : value.slice(colon + 1);
  const readOnly = flag === 'ro';
  const dir = flag === 'ro' || flag === 'rw' ? value.slice(0, colon) : value;
  if (dir === '') throw new HakoError('INVALID_ARGUMENT', `--share ${JSON.stringify(value)}: expected DIR[:ro] with a non-empty DIR`);
  // No cache key in the configuration (yet): 'auto', the guest trusting what it learnt for a second.
  const share: ShareConfig = { path: path.resolve(dir), tag: TEMPLATE_SHARE_TAG, readOnly, cache: 'auto' };
  validateShares([share]);
  return share;
}

const EXIT_STATUS: Record<Exclude<VmExit['kind'], 'stopped'>, number> = {
  poweroff: 0, reboot: 0, panic: 1, 'triple-fault': 1, crash: 1,
};

export async function boot(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    kernel: { type: 'string' },
    initrd: { type: 'string' },
    cmdline: { type: 'string' },
    vcpus: { type: 'string' },
    memory: { type: 'string' },
    'cpu-template': { type: 'string' },
    'no-template': { type: 'boolean' },
    'init-mode': { type: 'string' },
    disk: { type: 'string', multiple: true },
    vsock: { type: 'string' },
    cid: { type: 'string' },
    share: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 'boot');
  if (values.help) {
    console.log(bootHelp);
    return 0;
  }
  const template = values['cpu-template'];
  if (template !== undefined && !CPU_TEMPLATES.includes(template as CpuTemplateName)) {
    throw new HakoError('INVALID_ARGUMENT', `--cpu-template must be one of ${CPU_TEMPLATES.join(', ')}, got ${JSON.stringify(template)}`);
  }
  const initMode = values['init-mode'] === undefined ? undefined : checkInitMode(values['init-mode']);
  const pvmHost = isPvmHost();
  const vcpus = integerOption(values.vcpus, 'vcpus') ?? 1;
  const memoryMiB = integerOption(values.memory, 'memory') ?? 256;
  const cpuTemplate = (template as CpuTemplateName | undefined) ?? defaultTemplate(pvmHost);
  const disks = (values.disk ?? []).map(parseDiskOption);
  if (values.cid !== undefined && values.vsock === undefined) {
    throw new HakoError('INVALID_ARGUMENT', '--cid needs --vsock PATH (the guest has no vsock device without it)');
  }
  const vsock = values.vsock === undefined ? undefined : { socketPath: values.vsock, cid: integerOption(values.cid, 'cid') ?? DEFAULT_GUEST_CID };
  if (vsock) validateVsockConfig(vsock);
  const shares = values.share === undefined ? undefined : [parseShareOption(values.share)];
  const fromTemplate = !values['no-template'] && values.kernel === undefined && values.initrd === undefined
    && values.cmdline === undefined && disks.length === 0 && cpuTemplate === defaultTemplate(pvmHost);
  let vm: Vm;
  if (fromTemplate) {
    const spec = bundledTemplateSpec({ vcpus, memoryMiB }, pvmHost);
    const { key, dir } = await ensureTemplate(spec, templateRoot(), { progress: (line) => console.error(`hako: ${line}`) });
    try {
      vm = await Vm.restore(dir, { vsock, shares });
    } catch (e) {
      if (!(e instanceof HakoError) || e.code !== 'BAD_SNAPSHOT') throw e;
      throw new HakoError('BAD_SNAPSHOT', `${e.message}; remove the template with 'hako template rm ${key}' or boot with --no-template`, { cause: e });
    }
  } else {
    const guest = values.kernel === undefined ? bundledGuest() : undefined;
    const cmdline = values.cmdline ?? (guest ? bundledCmdline(guest, pvmHost) : DEFAULT_CMDLINE);
    vm = await Vm.create({
      kernel: values.kernel ?? guest!.vmlinux,
      initrd: values.initrd ?? guest?.initrd,
      cmdline: platformCmdline(initMode === undefined ? cmdline : `${cmdline} hako.init=${initMode}`, { pvmHost }),
      vcpus,
      memoryMiB,
      cpuTemplate,
      disks,
      vsock,
      shares,
    });
  }

  // The host stops the VM on Ctrl-C and when our stdout closes (e.g. `| head`);
  // the exit status then follows the shell's 128 + signal convention.
  let hostStopStatus: number | undefined;
  const hostStop = (status: number, why: string) => {
    hostStopStatus ??= status;
    vm.stop(why);
  };
  const onSigint = () => hostStop(130, 'interrupted (Ctrl-C)');
  const onStdoutError = () => hostStop(141, 'console output closed');
  const onInput = (data: Buffer) => vm.sendConsoleInput(data);
  process.on('SIGINT', onSigint);
  process.stdout.on('error', onStdoutError);
  process.stdin.on('data', onInput);
  try {
    const exit = await (fromTemplate ? startClone(vm, { initMode }) : vm.run());
    if (exit.kind !== 'poweroff') console.error(`hako: ${exit.detail}`);
    return exit.kind === 'stopped' ? hostStopStatus ?? 1 : EXIT_STATUS[exit.kind];
  } finally {
    process.off('SIGINT', onSigint);
    process.stdin.off('data', onInput);
    process.stdin.pause();
  }
}
