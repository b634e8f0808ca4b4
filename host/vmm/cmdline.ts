// Kernel command-line options hako's platform needs, appended to whatever the
// user or the bundled guest chose. Unpatched kernels ignore the hako.* ones.
export const EXIT_PORT = 0xf4;

export function platformCmdline(base: string, opts: { pvmHost: boolean }): string {
  const isKey = (w: string, key: string) => w === key || w.startsWith(`${key}=`);
  // Our guest kernel patch reports poweroff (0) and panic (1) on this port,
  // and the VMM listens on this one only.
  const words = base.trim().split(/\s+/).filter((w) => w && !isKey(w, 'hako.exit_port'));
  words.push(`hako.exit_port=0x${EXIT_PORT.toString(16)}`);
  const has = (key: string) => words.some((w) => isKey(w, key));
  // Enters system calls through the page fault that PVM turns them into.
  if (opts.pvmHost && !has('hako.pvm')) words.push('hako.pvm=1');
  return words.join(' ');
}
