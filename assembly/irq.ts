import { irqLine } from './env';

/** A device's interrupt output: forwards level changes (and only changes) to the host. */
export class IrqLine {
  /** Current level; the line starts deasserted, as KVM's irqchip does. */
  level: bool = false;

  constructor(readonly gsi: u32) {}

  set(level: bool): void {
    if (level == this.level) return;
    this.level = level;
    irqLine(this.gsi, level ? 1 : 0);
  }
}
