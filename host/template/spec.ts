// Which guest a template holds: the bundled guest in a given VM shape, and
// the key inputs that identify it.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { defaultTemplate, type CpuTemplateName } from '../cpu/template.js';
import { HakoError } from '../errors.js';
import { bundledCmdline, bundledGuest } from '../guest.js';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { bundledRootfsImage, imageRoot } from '../image/cache.js';
import { platformCmdline } from '../vmm/cmdline.js';
import { virtioDevices, type FsCacheMode, type VmConfig } from '../vmm/config.js';
import type { TemplateInputs } from './cache.js';

/** The command-line option that makes the guest's init hand off to the host (guest/initramfs/init). */
export const TEMPLATE_CMDLINE_OPTION = 'hako.template=1';

export interface TemplateSpec {
  kernel: string;
  initrd: string;
  /** The complete command line, TEMPLATE_CMDLINE_OPTION included. */
  cmdline: string;
  vcpus: number;
  memoryMiB: number;
  cpuTemplate: CpuTemplateName;
  /** A vsock device, so clones restored with RestoreOptions.vsock reach the guest's agent. */
  vsock: boolean;
  /**
   * A read-only image attached as the first disk (/dev/vda) while the template
   * boots: the slot clones fill with their containers' root file system
   * (RestoreOptions.disks; another size becomes a capacity change).
   */
  rootfsDisk?: string;
  /**
   * A virtio-fs device tagged TEMPLATE_SHARE_TAG, backed by an empty directory while the template boots
   * (the guest does not mount it then): the slot clones fill with a shared directory (RestoreOptions.shares).
   */
  share?: boolean;
  /** The share slot's cache mode (default 'auto'): clones keep it (RestoreOptions.shares). */
  shareCache?: FsCacheMode;
  /** A virtio-rng device (default true). */
  rng?: boolean;
  /** Whether the host is PVM, as the configuration says (VmOptions.pvmHost); detected when undefined. */
  pvmHost?: boolean;
}

/** The tag of a template's shared-directory slot; the bundled guest mounts it by this name. */
export const TEMPLATE_SHARE_TAG = 'hako-shared';

/**
 * The guest CID while the template boots. Clones get theirs at restore (with a transport reset);
 * hybrid vsock CIDs are private to each VM, so any valid value works.
 */
export const TEMPLATE_VSOCK_CID = 3;

/**
 * The VM that boots `spec`; its vsock device (if any) listens on `vsockSocketPath` and its share slot
 * (if any) is backed by `shareDir` while the template is made.
 */
export function templateVmConfig(spec: TemplateSpec, vsockSocketPath: string, shareDir: string): VmConfig {
  const { kernel, initrd, cmdline, vcpus, memoryMiB, cpuTemplate } = spec;
  return {
    kernel, initrd, cmdline, vcpus, memoryMiB, cpuTemplate, rng: spec.rng ?? true,
    ...(spec.rootfsDisk ? { disks: [{ path: spec.rootfsDisk, readOnly: true }] } : {}),
    ...(spec.vsock ? { vsock: { socketPath: vsockSocketPath, cid: TEMPLATE_VSOCK_CID } } : {}),
    ...(spec.share ? { shares: [{ path: shareDir, tag: TEMPLATE_SHARE_TAG, readOnly: false, cache: spec.shareCache ?? 'auto' }] } : {}),
  };
}

/**
 * The bundled guest as a template of `vcpus` and `memoryMiB`, with this host's CPU template and the
 * configuration's guest.rng, virtiofs.cache and image cache.
 */
export function bundledTemplateSpec(shape: { vcpus: number; memoryMiB: number }, pvmHost: boolean, config: LoadedConfig = loadConfig()): TemplateSpec {
  const guest = bundledGuest();
  return {
    kernel: guest.vmlinux,
    initrd: guest.initrd,
    cmdline: `${platformCmdline(bundledCmdline(guest, pvmHost), { pvmHost })} ${TEMPLATE_CMDLINE_OPTION}`,
    ...shape,
    // Vm.restore accepts only the host's default CPU template.
    cpuTemplate: defaultTemplate(pvmHost),
    vsock: true,
    rootfsDisk: bundledRootfsImage(guest, imageRoot(process.env, config)),
    share: true,
    pvmHost,
    shareCache: config.values.virtiofs.cache,
    rng: config.values.guest.rng,
  };
}

function fileSha256(file: string): string {
  try {
    return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  } catch (e) {
    throw new HakoError('NOT_BUILT', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); run 'npm run setup'`, { cause: e });
  }
}

export function templateInputs(spec: TemplateSpec): TemplateInputs {
  return {
    kernelSha256: fileSha256(spec.kernel),
    initrdSha256: fileSha256(spec.initrd),
    cmdline: spec.cmdline,
    vcpus: spec.vcpus,
    memoryMiB: spec.memoryMiB,
    cpuTemplate: spec.cpuTemplate,
    // The guest saw these devices at boot; its snapshot only restores onto the same ones.
    devices: virtioDevices(templateVmConfig(spec, '', '')).map((d) => (d.kind === 'fs'
      ? `fs ${d.tag} ${d.readOnly ? 'ro' : 'rw'} ${d.cache}` : d.kind)),
  };
}
