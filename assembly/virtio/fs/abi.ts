// The FUSE wire format as virtio-fs carries it (linux/fuse.h, protocol 7.36
// of the guest's Linux 6.1): opcodes, struct sizes and field offsets,
// flag bits and errno values. Little-endian, no padding surprises: every
// struct is a multiple of 8 bytes.

export const FUSE_KERNEL_VERSION: u32 = 7;
/** The minor version we speak; INIT answers min(this, the guest's). */
export const FUSE_KERNEL_MINOR_VERSION: u32 = 36;
/**
 * The oldest minor we serve: every struct has its current size from 7.23 on
 * (older guests send compat layouts we do not parse).
 */
export const FUSE_MIN_MINOR_VERSION: u32 = 23;
export const FUSE_ROOT_ID: u64 = 1;

// Opcodes.
export const FUSE_LOOKUP: u32 = 1;
export const FUSE_FORGET: u32 = 2;
export const FUSE_GETATTR: u32 = 3;
export const FUSE_SETATTR: u32 = 4;
export const FUSE_READLINK: u32 = 5;
export const FUSE_SYMLINK: u32 = 6;
export const FUSE_MKNOD: u32 = 8;
export const FUSE_MKDIR: u32 = 9;
export const FUSE_UNLINK: u32 = 10;
export const FUSE_RMDIR: u32 = 11;
export const FUSE_RENAME: u32 = 12;
export const FUSE_LINK: u32 = 13;
export const FUSE_OPEN: u32 = 14;
export const FUSE_READ: u32 = 15;
export const FUSE_WRITE: u32 = 16;
export const FUSE_STATFS: u32 = 17;
export const FUSE_RELEASE: u32 = 18;
export const FUSE_FSYNC: u32 = 20;
export const FUSE_SETXATTR: u32 = 21;
export const FUSE_GETXATTR: u32 = 22;
export const FUSE_LISTXATTR: u32 = 23;
export const FUSE_REMOVEXATTR: u32 = 24;
export const FUSE_FLUSH: u32 = 25;
export const FUSE_INIT: u32 = 26;
export const FUSE_OPENDIR: u32 = 27;
export const FUSE_READDIR: u32 = 28;
export const FUSE_RELEASEDIR: u32 = 29;
export const FUSE_FSYNCDIR: u32 = 30;
export const FUSE_INTERRUPT: u32 = 36;
export const FUSE_CREATE: u32 = 35;
export const FUSE_DESTROY: u32 = 38;
export const FUSE_BATCH_FORGET: u32 = 42;
export const FUSE_FALLOCATE: u32 = 43;
export const FUSE_READDIRPLUS: u32 = 44;
export const FUSE_RENAME2: u32 = 45;
export const FUSE_LSEEK: u32 = 46;

// fuse_in_header (40 bytes).
export const IN_HEADER_SIZE: u32 = 40;
export const IN_LEN: usize = 0;
export const IN_OPCODE: usize = 4;
export const IN_UNIQUE: usize = 8;
export const IN_NODEID: usize = 16;
export const IN_UID: usize = 24;
export const IN_GID: usize = 28;

// fuse_out_header (16 bytes): len u32, error i32, unique u64.
export const OUT_HEADER_SIZE: u32 = 16;

/** fuse_attr: the first 88 bytes of the host's stat record. */
export const ATTR_SIZE: u32 = 88;
/** The host's stat record: fuse_attr, then dev u64. */
export const STAT_SIZE: u32 = 96;
export const STAT_INO: usize = 0;
export const STAT_DEV: usize = 88;

/** fuse_entry_out: nodeid, generation, entry_valid, attr_valid (u64), their nsec (u32 x2), fuse_attr. */
export const ENTRY_OUT_SIZE: u32 = 40 + ATTR_SIZE;
/** fuse_attr_out: attr_valid u64, attr_valid_nsec u32, dummy u32, fuse_attr. */
export const ATTR_OUT_SIZE: u32 = 16 + ATTR_SIZE;
/** fuse_open_out: fh u64, open_flags u32, padding u32. */
export const OPEN_OUT_SIZE: u32 = 16;
export const INIT_OUT_SIZE: u32 = 64;
/** fuse_kstatfs as fuse_statfs_out. */
export const STATFS_OUT_SIZE: u32 = 80;
/** fuse_write_out, fuse_getxattr_out, fuse_lseek_out: one 8-byte word. */
export const WORD_OUT_SIZE: u32 = 8;

// Op argument sizes (after the in header).
export const FORGET_IN_SIZE: u32 = 8;
export const FORGET_ONE_SIZE: u32 = 16;
export const BATCH_FORGET_IN_SIZE: u32 = 8;
export const GETATTR_IN_SIZE: u32 = 16;
export const SETATTR_IN_SIZE: u32 = 88;
export const MKNOD_IN_SIZE: u32 = 16;
export const MKDIR_IN_SIZE: u32 = 8;
export const RENAME_IN_SIZE: u32 = 8;
export const RENAME2_IN_SIZE: u32 = 16;
export const LINK_IN_SIZE: u32 = 8;
export const OPEN_IN_SIZE: u32 = 8;
export const CREATE_IN_SIZE: u32 = 16;
export const RELEASE_IN_SIZE: u32 = 24;
export const FLUSH_IN_SIZE: u32 = 24;
export const READ_IN_SIZE: u32 = 40;
export const WRITE_IN_SIZE: u32 = 40;
export const FSYNC_IN_SIZE: u32 = 16;
/** The compat fuse_setxattr_in (size, flags): we do not offer FUSE_SETXATTR_EXT. */
export const SETXATTR_IN_SIZE: u32 = 8;
export const GETXATTR_IN_SIZE: u32 = 8;
export const FALLOCATE_IN_SIZE: u32 = 32;
export const LSEEK_IN_SIZE: u32 = 24;

// fuse_setattr_in offsets.
export const SETATTR_VALID: u32 = 0;
export const SETATTR_FH: u32 = 8;
export const SETATTR_SIZE: u32 = 16;
export const SETATTR_ATIME: u32 = 32;
export const SETATTR_MTIME: u32 = 40;
export const SETATTR_ATIMENSEC: u32 = 56;
export const SETATTR_MTIMENSEC: u32 = 60;
export const SETATTR_MODE: u32 = 68;
export const SETATTR_UID: u32 = 76;
export const SETATTR_GID: u32 = 80;

/** The host's setattr record (48 bytes). */
export const ATTR_RECORD_SIZE: u32 = 48;

// FATTR_* (setattr valid bits).
export const FATTR_MODE: u32 = 1 << 0;
export const FATTR_UID: u32 = 1 << 1;
export const FATTR_GID: u32 = 1 << 2;
export const FATTR_SIZE: u32 = 1 << 3;
export const FATTR_ATIME: u32 = 1 << 4;
export const FATTR_MTIME: u32 = 1 << 5;
export const FATTR_FH: u32 = 1 << 6;
export const FATTR_ATIME_NOW: u32 = 1 << 7;
export const FATTR_MTIME_NOW: u32 = 1 << 8;
/** The bits the host applies; the rest (lock owner, ctime, kill suid) are the guest kernel's business. */
export const FATTR_HOST_BITS: u32 =
  FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_SIZE | FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW;

// FOPEN_* (open_out.open_flags).
export const FOPEN_DIRECT_IO: u32 = 1 << 0;
export const FOPEN_KEEP_CACHE: u32 = 1 << 1;
export const FOPEN_CACHE_DIR: u32 = 1 << 3;

// INIT flags we may offer (each only if the guest offered it too).
export const FUSE_ASYNC_READ: u32 = 1 << 0;
export const FUSE_ATOMIC_O_TRUNC: u32 = 1 << 3;
export const FUSE_BIG_WRITES: u32 = 1 << 5;
export const FUSE_DO_READDIRPLUS: u32 = 1 << 13;
export const FUSE_READDIRPLUS_AUTO: u32 = 1 << 14;
export const FUSE_PARALLEL_DIROPS: u32 = 1 << 18;
export const FUSE_MAX_PAGES: u32 = 1 << 22;
export const INIT_FLAGS_OFFERED: u32 =
  FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |
  FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES;

/** The largest READ or WRITE payload (INIT max_write; max_pages of 4 KiB pages). */
export const MAX_WRITE: u32 = 1 << 20;
export const MAX_PAGES: u32 = 256;
export const MAX_BACKGROUND: u32 = 16;
export const CONGESTION_THRESHOLD: u32 = 12;

// fuse_dirent: ino u64, off u64, namelen u32, type u32, name padded to 8. The host writes
// them; Wasm checks namelen and the name before the guest sees one.
export const DIRENT_SIZE: u32 = 24;
export const DIRENT_NAMELEN: usize = 16;

// Limits.
/** NAME_MAX: longest path component. */
export const NAME_MAX: u32 = 255;
/** Longest symlink target (PATH_MAX without its NUL). */
export const SYMLINK_MAX: u32 = 4095;
/** XATTR_SIZE_MAX, XATTR_LIST_MAX. */
export const XATTR_SIZE_MAX: u32 = 64 * 1024;
/** XATTR_NAME_MAX. */
export const XATTR_NAME_MAX: u32 = 255;

// Open flags (x86-64 Linux) the host may see; everything else is masked off.
export const O_ACCMODE: u32 = 3;
export const O_RDONLY: u32 = 0;
export const O_EXCL: u32 = 0o200;
export const O_TRUNC: u32 = 0o1000;
export const O_APPEND: u32 = 0o2000;
export const O_NONBLOCK: u32 = 0o4000;
export const O_DSYNC: u32 = 0o10000;
export const O_DIRECTORY: u32 = 0o200000;
export const O_NOATIME: u32 = 0o1000000;
export const O_SYNC: u32 = 0o4010000;
export const OPEN_FLAGS_PASSED: u32 =
  O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_SYNC | O_DSYNC | O_DIRECTORY | O_NOATIME;

/** Permission and type bits of a mode. */
export const S_IFMT: u32 = 0o170000;
export const MODE_PERMISSIONS: u32 = 0o7777;

export const RENAME_NOREPLACE: u32 = 1;
export const RENAME_EXCHANGE: u32 = 2;

// fallocate modes the host serves.
export const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
export const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;
export const FALLOC_FL_ZERO_RANGE: u32 = 0x10;
export const FALLOC_MODES: u32 = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;

export const SEEK_DATA: u32 = 3;
export const SEEK_HOLE: u32 = 4;

// errno values (Linux).
export const EPERM: i32 = 1;
export const EIO: i32 = 5;
export const EINVAL: i32 = 22;
export const ENFILE: i32 = 23;
export const ERANGE: i32 = 34;
export const ENAMETOOLONG: i32 = 36;
export const ENOSYS: i32 = 38;
export const ENODATA: i32 = 61;
export const EPROTO: i32 = 71;
export const EOPNOTSUPP: i32 = 95;
export const ESTALE: i32 = 116;
export const EROFS: i32 = 30;
