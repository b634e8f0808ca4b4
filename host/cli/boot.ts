// `hako boot`: boot a kernel in a microVM with its serial console on this terminal.
import path from 'node:path';
import { bundledCmdline, bundledGuest } from '../guest.js';
import { HakoError } from '../errors.js';
import type { LoadedConfig } from '../config/load.js';
import { logConfigFiles, logger, traceAreas } from '../config/logging.js';
import { cpuTemplate as configuredCpuTemplate, pvmHost as configuredPvmHost } from '../config/settings.js';
import { CPU_TEMPLATES, defaultTemplate, type CpuTemplateName } from '../cpu/template.js';
import { Vm, type VmExit } from '../vmm/vm.js';
import { templateRoot } from '../template/cache.js';
import { checkInitMode, startClone } from '../template/clone.js';
import { ensureTemplate } from '../template/create.js';
import { bundledTemplateSpec, TEMPLATE_SHARE_TAG } from '../template/spec.js';
import { platformCmdline } from '../vmm/cmdline.js';
import { parseDiskOption, type DiskConfig } from '../block/disk.js';
import { MIN_GUEST_CID, validateShares, validateVsockConfig, type FsCacheMode, type ShareConfig, type VsockConfig } from '../vmm/config.js';
import { integerOption, parse } from './args.js';
import { commandConfig, CONFIG_OPTION } from './run-args.js';

/** Hybrid vsock CIDs are private to each VM: every guest can have the first one. */
const DEFAULT_GUEST_CID = MIN_GUEST_CID;

export const bootHelp = `Usage: hako boot [options]

Boots a Linux kernel in a KVM microVM; the guest's serial console is this
terminal. Without options it boots the bundled guest that guest/ builds.

The bundled guest (no --kernel, --initrd, --cmdline or --disk, nor guest.kernel,
guest.initramfs or guest.cmdline in the configuration; the host's default CPU
template) starts as a clone of a VM template, a snapshot taken once its init
was up, in seconds. The template for the VM's shape is made first when
missing (one cold boot; see 'hako template --help').

Options:
  --kernel FILE          ELF vmlinux (PVH entry) or bzImage (default:
                         guest.kernel, else bundled)
  --initrd FILE          initramfs (default: guest.initramfs, else bundled, or
                         none with another kernel)
  --cmdline STR          kernel command line (default: guest.cmdline, else the
                         bundled guest's); hako appends hako.exit_port=, and
                         hako.pvm=1 on PVM hosts
  --vcpus N              number of vCPUs (default: resources.vcpus)
  --memory MiB           guest RAM, 64 to 4096 (default: resources.memory_mib)
  --cpu-template NAME    host | compatible (default: hypervisor.cpu_template;
                         auto is compatible on PVM hosts, else host)
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
                         with :ro the guest's writes fail with EROFS; cached as
                         virtiofs.cache says
  --no-template          cold-boot the bundled guest instead of cloning a template
                         (default: templates.enabled = false does the same)
  --init-mode MODE       the bundled guest's init mode (guest/initramfs/init), e.g.
                         idle (print 'hako-init: idle', sleep until stopped) or
                         check; passed as hako.init=MODE when cold-booting and
                         on the clone line to a clone (default: power off)
  --config FILE          configuration file (see 'hako config --help'); the
                         guest's virtio-rng device, the host's PVM mode
                         (hypervisor.pvm), logging and caches come from it too
  -h, --help             show this help

Exit status: 0 when the guest powers off or reboots, 1 when it panics,
triple-faults or stops on an exit hako cannot handle, 2 on bad input,
130 when interrupted with Ctrl-C, 141 when standard output closes.`;

/** For a kernel given with --kernel and no --cmdline. */
const DEFAULT_CMDLINE = 'console=ttyS0 reboot=k panic=-1';

/** `--share DIR[:ro]` (or DIR:rw) as the VM's one shared directory, with the configuration's cache mode (virtiofs.cache). */
export function parseShareOption(value: string, cache: FsCacheMode = 'auto'): ShareConfig {
  const colon = value.lastIndexOf(':');
  const flag = colon < 0 ? '' : value.slice(colon + 1);
  const readOnly = flag === 'ro';
  const dir = flag === 'ro' || flag === 'rw' ? value.slice(0, colon) : value;
  if (dir === '') throw new HakoError('INVALID_ARGUMENT', `--share ${JSON.stringify(value)}: expected DIR[:ro] with a non-empty DIR`);
  const share: ShareConfig = { path: path.resolve(dir), tag: TEMPLATE_SHARE_TAG, readOnly, cache };
  validateShares([share]);
  return share;
}

const OPTIONS = {
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
  ...CONFIG_OPTION,
  help: { type: 'boolean', short: 'h' },
} as const;

export type BootFlags = ReturnType<typeof parse<typeof OPTIONS>>['values'];

/** What `hako boot` will do: its flags over the configuration's defaults. */
export interface BootPlan {
  vcpus: number;
  memoryMiB: number;
  cpuTemplate: CpuTemplateName;
  pvmHost: boolean;
  /** Another guest than the bundled one, from flags or the configuration (undefined: the bundled one's). */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  rng: boolean;
  disks: DiskConfig[];
  vsock?: VsockConfig;
  shares?: ShareConfig[];
  initMode?: string;
  /** Start as a clone of a template of the bundled guest rather than cold-boot. */
  fromTemplate: boolean;
}

/** Resolves boot's flags against `config` (`pvmHost` is what hypervisor.pvm says of this host); checks them without touching KVM. */
export function bootPlan(values: BootFlags, config: LoadedConfig, pvmHost: boolean): BootPlan {
  const template = values['cpu-template'];
  if (template !== undefined && !CPU_TEMPLATES.includes(template as CpuTemplateName)) {
    throw new HakoError('INVALID_ARGUMENT', `--cpu-template must be one of ${CPU_TEMPLATES.join(', ')}, got ${JSON.stringify(template)}`);
  }
  const { guest, resources } = config.values;
  // "" in the configuration means the bundled guest's, as no flag does.
  const orConfig = (flag: string | undefined, configured: string) => flag ?? (configured === '' ? undefined : configured);
  const disks = (values.disk ?? []).map(parseDiskOption);
  if (values.cid !== undefined && values.vsock === undefined) {
    throw new HakoError('INVALID_ARGUMENT', '--cid needs --vsock PATH (the guest has no vsock device without it)');
  }
  const vsock = values.vsock === undefined ? undefined : { socketPath: values.vsock, cid: integerOption(values.cid, 'cid') ?? DEFAULT_GUEST_CID };
  if (vsock) validateVsockConfig(vsock);
  const plan: BootPlan = {
    vcpus: integerOption(values.vcpus, 'vcpus') ?? resources.vcpus,
    memoryMiB: integerOption(values.memory, 'memory') ?? resources.memory_mib,
    cpuTemplate: (template as CpuTemplateName | undefined) ?? configuredCpuTemplate(config, pvmHost),
    pvmHost,
    kernel: orConfig(values.kernel, guest.kernel),
    initrd: orConfig(values.initrd, guest.initramfs),
    cmdline: orConfig(values.cmdline, guest.cmdline),
    rng: guest.rng,
    disks,
    vsock,
    shares: values.share === undefined ? undefined : [parseShareOption(values.share, config.values.virtiofs.cache)],
    initMode: values['init-mode'] === undefined ? undefined : checkInitMode(values['init-mode']),
    fromTemplate: false,
  };
  plan.fromTemplate = !values['no-template'] && config.values.templates.enabled && plan.kernel === undefined
    && plan.initrd === undefined && plan.cmdline === undefined && disks.length === 0 && plan.cpuTemplate === defaultTemplate(pvmHost);
  return plan;
}

const EXIT_STATUS: Record<Exclude<VmExit['kind'], 'stopped'>, number> = {
  poweroff: 0, reboot: 0, panic: 1, 'triple-fault': 1, crash: 1,
};

export async function boot(argv: string[]): Promise<number> {
  const { values } = parse(argv, OPTIONS, 'boot');
  if (values.help) {
    console.log(bootHelp);
    return 0;
  }
  const config = commandConfig(values.config);
  const log = logger(config);
  logConfigFiles(config, log);
  const plan = bootPlan(values, config, configuredPvmHost(config));
  const { vcpus, memoryMiB, pvmHost, vsock, shares, initMode, fromTemplate } = plan;
  const vmOptions = { trace: traceAreas(config), pvmHost };
  let vm: Vm;
  if (fromTemplate) {
    const spec = bundledTemplateSpec({ vcpus, memoryMiB }, pvmHost, config);
    const { key, dir } = await ensureTemplate(spec, templateRoot(process.env, config), { progress: log.info });
    try {
      vm = await Vm.restore(dir, { ...vmOptions, vsock, shares });
    } catch (e) {
      if (!(e instanceof HakoError) || e.code !== 'BAD_SNAPSHOT') throw e;
      throw new HakoError('BAD_SNAPSHOT', `${e.message}; remove the template with 'hako template rm ${key}' or boot with --no-template`, { cause: e });
    }
  } else {
    const guest = plan.kernel === undefined ? bundledGuest() : undefined;
    const cmdline = plan.cmdline ?? (guest ? bundledCmdline(guest, pvmHost) : DEFAULT_CMDLINE);
    vm = await Vm.create({
      kernel: plan.kernel ?? guest!.vmlinux,
      initrd: plan.initrd ?? guest?.initrd,
      cmdline: platformCmdline(initMode === undefined ? cmdline : `${cmdline} hako.init=${initMode}`, { pvmHost }),
      vcpus,
      memoryMiB,
      cpuTemplate: plan.cpuTemplate,
      rng: plan.rng,
      disks: plan.disks,
      vsock,
      shares,
    }, vmOptions);
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
    if (exit.kind !== 'poweroff') log.error(exit.detail);
    return exit.kind === 'stopped' ? hostStopStatus ?? 1 : EXIT_STATUS[exit.kind];
  } finally {
    process.off('SIGINT', onSigint);
    process.stdin.off('data', onInput);
    process.stdin.pause();
  }
}
