// Kernel command-line options hako's platform needs, appended to whatever the
// user or the bundled guest chose. Unpatched kernels ignore the hako.* ones.
export const EXIT_PORT = 0xf4;

export function platformCmdline(base: string, opts: { pvmHost: boolean }): string {
  const words = base.trim().split(/\s+/).filter(Boolean);
  const has = (key: string) => words.some((w) => w === key || w.startsWith(`${key}=`));
  // Our guest kernel patch reports poweroff (0) and panic (1) on this port.
  if (!has('hako.exit_port')) words.push(`hako.exit_port=0x${EXIT_PORT.toString(16)}`);
  // Enters system calls through the page fault that PVM turns them into.
  if (opts.pvmHost && !has('hako.pvm')) words.push('hako.pvm=1');
  return words.join(' ');
}
