// The guest's file handles (fh, as OPEN/OPENDIR/CREATE answered them) and the
// host open-file handles behind them. An fh is a slot index; freed slots are
// reused. The guest can only name handles this table holds.

/** Open files the table holds; an open past it answers -ENFILE. */
export const MAX_FILES: i32 = 65536;

export class FileTable {
  private readonly files: Array<u32> = [];
  private readonly used: Array<bool> = [];
  private readonly free: Array<i32> = [];
  count: i32 = 0;

  /** Slots ever allocated (iterate [0, capacity) with isUsed). */
  get capacity(): i32 {
    return this.files.length;
  }

  isUsed(slot: i32): bool {
    return slot >= 0 && slot < this.used.length && unchecked(this.used[slot]);
  }

  get isFull(): bool {
    return this.count >= MAX_FILES;
  }

  /** The slot of guest `fh`, or -1 when it names no open file. */
  find(fh: u64): i32 {
    if (fh >= <u64>this.files.length) return -1;
    const slot = <i32>fh;
    return unchecked(this.used[slot]) ? slot : -1;
  }

  /** Host file handle of live `slot`. */
  file(slot: i32): u32 {
    return this.files[slot];
  }

  /** A new slot (the guest's fh) for host `file`; -1 when full. */
  add(file: u32): i32 {
    if (this.isFull) return -1;
    let slot: i32;
    if (this.free.length > 0) {
      slot = this.free.pop();
    } else {
      slot = this.files.length;
      this.files.push(0);
      this.used.push(false);
    }
    this.files[slot] = file;
    this.used[slot] = true;
    this.count++;
    return slot;
  }

  remove(slot: i32): void {
    this.used[slot] = false;
    this.free.push(slot);
    this.count--;
  }

  /** Frees every slot (the caller released their files). */
  clear(): void {
    this.files.length = 0;
    this.used.length = 0;
    this.free.length = 0;
    this.count = 0;
  }
}
