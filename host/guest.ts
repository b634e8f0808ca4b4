// The bundled guest that guest/build.sh produces; scripts/setup.mjs records
// where it lives in build/guest.json.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from './errors.js';
import { repoRoot } from './native.js';

export interface BundledGuest {
  vmlinux: string;
  bzImage: string;
  initrd: string;
  /** The default container root file system, a directory (guest/rootfs/); host/image/ makes its ext4 image. */
  rootfs: string;
  /** Kernel command line for every host. */
  cmdline: string;
  /** Appended on PVM hosts: the guest-side workarounds (hako.pvm=1 and what goes with it). */
  cmdlinePvm: string;
  kernelRelease: string;
}

/** The bundled guest's command line for this kind of host. */
export function bundledCmdline(guest: BundledGuest, pvmHost: boolean): string {
  return pvmHost ? `${guest.cmdline} ${guest.cmdlinePvm}` : guest.cmdline;
}

export function bundledGuest(): BundledGuest {
  const file = path.join(repoRoot, 'build', 'guest.json');
  let guest: BundledGuest;
  try {
    guest = JSON.parse(fs.readFileSync(file, 'utf8')) as BundledGuest;
  } catch (e) {
    throw new HakoError('NOT_BUILT', `the bundled guest is not built (${file} is missing); run 'npm run setup'`, { cause: e });
  }
  for (const f of [guest.vmlinux, guest.initrd]) {
    if (!fs.existsSync(f)) throw new HakoError('NOT_BUILT', `the bundled guest's ${f} is missing from the cache; run 'npm run setup'`);
  }
  return guest;
}
