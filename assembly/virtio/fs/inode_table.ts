// The guest's nodeids and the host node handles behind them. A nodeid is a
// slot index + 1, so nodeid 1 (FUSE_ROOT_ID) is slot 0, the share's root
// (host node 0), which is never forgotten. Each other slot counts the
// lookups the guest was told about (nlookup): FORGET subtracts, and at 0 the
// slot is freed and its host handle must be closed. Two host handles of one
// inode (a lookup of a name we know under another, a hard link) share one
// nodeid: slots are found by (dev, ino).

/** Slots beyond the root the table holds; a lookup past it answers -ENFILE. */
export const MAX_INODES: i32 = 65536;

export class InodeTable {
  private readonly nodes: Array<u32> = [0];
  private readonly nlookup: Array<u64> = [0];
  private readonly devs: Array<u64> = [0];
  private readonly inos: Array<u64> = [0];
  private readonly used: Array<bool> = [true];
  /** Next slot with the same ino (-1 ends the chain); chains start in `byIno`. */
  private readonly nextSameIno: Array<i32> = [-1];
  private readonly byIno: Map<u64, i32> = new Map<u64, i32>();
  private readonly free: Array<i32> = [];
  /** Slots in use, the root included. */
  count: i32 = 1;

  /** Slots ever allocated (iterate [0, capacity) with isUsed). */
  get capacity(): i32 {
    return this.nodes.length;
  }

  isUsed(slot: i32): bool {
    return slot >= 0 && slot < this.used.length && unchecked(this.used[slot]);
  }

  /** The slot of guest `nodeid`, or -1 when it names no live slot. */
  find(nodeid: u64): i32 {
    if (nodeid == 0 || nodeid > <u64>this.nodes.length) return -1;
    const slot = <i32>(nodeid - 1);
    return unchecked(this.used[slot]) ? slot : -1;
  }

  /** Host node handle of live `slot`. */
  node(slot: i32): u32 {
    return this.nodes[slot];
  }

  /** The slot of inode (dev, ino), or -1. */
  findInode(dev: u64, ino: u64): i32 {
    if (!this.byIno.has(ino)) return -1;
    let slot = this.byIno.get(ino);
    while (slot >= 0 && unchecked(this.devs[slot]) != dev) slot = unchecked(this.nextSameIno[slot]);
    return slot;
  }

  /** The guest learnt `slot`'s nodeid once more. */
  ref(slot: i32): void {
    if (slot != 0) this.nlookup[slot]++;
  }

  get isFull(): bool {
    return this.count > MAX_INODES;
  }

  /** A new slot for host `node` of inode (dev, ino) with one lookup; -1 when full. */
  add(node: u32, dev: u64, ino: u64): i32 {
    if (this.isFull) return -1;
    let slot: i32;
    if (this.free.length > 0) {
      slot = this.free.pop();
    } else {
      slot = this.nodes.length;
      this.nodes.push(0);
      this.nlookup.push(0);
      this.devs.push(0);
      this.inos.push(0);
      this.used.push(false);
      this.nextSameIno.push(-1);
    }
    this.nodes[slot] = node;
    this.nlookup[slot] = 1;
    this.devs[slot] = dev;
    this.inos[slot] = ino;
    this.used[slot] = true;
    this.nextSameIno[slot] = this.byIno.has(ino) ? this.byIno.get(ino) : -1;
    this.byIno.set(ino, slot);
    this.count++;
    return slot;
  }

  /**
   * The guest forgot `count` lookups of `slot` (at most those it had): true
   * if none are left, and the slot is then freed (the caller closes its node).
   * The root is never freed.
   */
  forget(slot: i32, count: u64): bool {
    if (slot == 0) return false;
    const left = this.nlookup[slot];
    if (count < left) {
      this.nlookup[slot] = left - count;
      return false;
    }
    this.release(slot);
    return true;
  }

  /** Frees every slot but the root (the caller closed their nodes). */
  clear(): void {
    this.nodes.length = 1;
    this.nlookup.length = 1;
    this.devs.length = 1;
    this.inos.length = 1;
    this.used.length = 1;
    this.nextSameIno.length = 1;
    this.free.length = 0;
    this.byIno.clear();
    this.count = 1;
  }

  private release(slot: i32): void {
    const ino = this.inos[slot];
    const next = this.nextSameIno[slot];
    if (this.byIno.get(ino) == slot) {
      if (next < 0) this.byIno.delete(ino);
      else this.byIno.set(ino, next);
    } else {
      let prev = this.byIno.get(ino);
      while (unchecked(this.nextSameIno[prev]) != slot) prev = unchecked(this.nextSameIno[prev]);
      this.nextSameIno[prev] = next;
    }
    this.used[slot] = false;
    this.free.push(slot);
    this.count--;
  }
}
