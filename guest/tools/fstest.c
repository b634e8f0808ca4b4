// hako-fstest [--escape | --readonly] DIR: file-system semantics on a virtio-fs mount (DIR), for the virtio-fs VM
// tests (init modes fstest, fstest-escape, fstest-ro). Freestanding: see sys.h.
//
// hako-fstest DIR (DIR must be empty): one line per check,
//   fstest: ok NAME
//   fstest: FAIL NAME: why[: errno N]
//   fstest: done N ok M failed                 (exit status 0 only when M is 0)
// and leaves these results in DIR for the host to compare byte for byte (mode, owner, size, content):
//   out/pattern-1MiB   1048576 bytes, byte i = i*7 mod 251, mode 0644
//   out/link           symlink -> "pattern-1MiB"
//   out/hard           hard link of out/pattern-1MiB (same inode, nlink 2)
//   out/renamed        "renamed\n"             (made as work/rename-a, then renamed)
//   out/replaced       "new\n"                 (renamed over a file holding "old\n")
//   out/swap-a         "b\n", out/swap-b "a\n" (RENAME_EXCHANGE of files made the other way round)
//   out/mode-0640      "mode\n", mode 0640
//   out/owned          "owned\n", owner 1000:1000
//   out/truncated      "0123"                  (written "0123456789", truncated to 100000, then to 4)
//   out/times          "times\n", atime 1000000000.0 (reading the file on the host may update it: relatime),
//                      mtime 1234567890.123456789
//   out/xattr          "xattr\n", xattr user.hako = "yes" and no other user.* xattr
//   out/sparse         5 GiB + 4096 bytes: zeros (a hole), then the first 4096 bytes of the pattern at 5 GiB
//   out/concurrent     524288 bytes: 262144 x 'A' then 262144 x 'B' (two processes writing 4 KiB blocks at once)
//   out/fallocate      1048576 zero bytes (fallocate mode 0, then KEEP_SIZE beyond the end)
//   many/f0000 .. many/f0199   200 empty files (HAKO_FSTEST_MANY=N in the environment, e.g. from the kernel
//                              command line: N files, 1..10000; each create costs ~0.25 s where guest kernel code
//                              is emulated, so template clones, which take no command line, use the default)
// Every other file it makes (under DIR/work/) is removed again; DIR/work itself too (check "cleanup").
//
// hako-fstest --escape DIR: tries to reach files outside the share and reports everything it could open:
//   escape: read ATTEMPT PATH: <first line, up to 60 bytes>
//   escape: wrote ATTEMPT PATH
//   escape: done N attempts M opened
// The guest resolves symlinks and ".." itself, so what it opens through them is the guest's own file system (e.g.
// /etc/passwd of the initramfs); the host test puts canary files named "hako-canary" outside the share (e.g. in its
// parent directory) and checks that their content never appears here and that they were not modified. Attempts:
// a symlink to / followed, ".." chains from the root of the mount, a symlink swapped (RENAME_EXCHANGE with a real
// directory) while another process opens paths through it, and a directory renamed while another process walks
// ".." out of it. Each tries to read hako-canary and etc/passwd and to append to hako-canary.
//
// hako-fstest --readonly DIR (a read-only share holding at least one regular file): every kind of write must fail
// with EROFS, one "fstest: ok|FAIL KIND" line each (create, write, mkdir, unlink, rename, chmod, setxattr, truncate,
// symlink, link), plus "read" (reading the file still works), then the "done" line.

#define TOOL_NAME "fstest"
#include "sys.h"

#define SYS_read 0
#define SYS_open 2
#define SYS_close 3
#define SYS_stat 4
#define SYS_fstat 5
#define SYS_lstat 6
#define SYS_lseek 8
#define SYS_pread64 17
#define SYS_pwrite64 18
#define SYS_sched_yield 24
#define SYS_fork 57
#define SYS_wait4 61
#define SYS_fsync 74
#define SYS_fdatasync 75
#define SYS_truncate 76
#define SYS_chdir 80
#define SYS_fchdir 81
#define SYS_rename 82
#define SYS_mkdir 83
#define SYS_rmdir 84
#define SYS_link 86
#define SYS_unlink 87
#define SYS_symlink 88
#define SYS_readlink 89
#define SYS_chmod 90
#define SYS_chown 92
#define SYS_statfs 137
#define SYS_sync 162
#define SYS_setxattr 188
#define SYS_getxattr 191
#define SYS_listxattr 194
#define SYS_removexattr 197
#define SYS_getdents64 217
#define SYS_utimensat 280
#define SYS_fallocate 285
#define SYS_renameat2 316

#define O_RDONLY 0
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_EXCL 0200
#define O_TRUNC 01000
#define O_APPEND 02000
#define O_DIRECTORY 0200000
#define O_CLOEXEC 02000000
#define AT_FDCWD -100
#define SEEK_DATA 3
#define SEEK_HOLE 4
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#define XATTR_CREATE 1
#define FALLOC_FL_KEEP_SIZE 1
#define S_IFMT 0170000
#define S_IFLNK 0120000
#define DT_REG 8
#define FUSE_SUPER_MAGIC 0x65735546

#define ENOENT 2
#define EEXIST 17
#define EROFS 30
#define ENOTEMPTY 39
#define ENODATA 61

#define MiB (1UL << 20)
#define SPARSE_AT (5UL << 30)
#define MAX_MANY 10000
#define HALF (256UL << 10) // each concurrent writer's region

struct kstat { // struct stat of x86-64
	u64 dev, ino, nlink;
	unsigned int mode, uid, gid, pad;
	u64 rdev;
	i64 size, blksize, blocks;
	i64 atime, atime_ns, mtime, mtime_ns, ctime, ctime_ns;
	i64 unused[3];
};

static unsigned char pattern[MiB], back[MiB];
static char dents[32768];

static u64 slen(const char *s) {
	u64 n = 0;
	while (s[n]) n++;
	return n;
}

static int same(const void *a, const void *b, u64 n) {
	const unsigned char *x = a, *y = b;
	for (u64 i = 0; i < n; i++)
		if (x[i] != y[i]) return 0;
	return 1;
}

static int streq(const char *a, const char *b) {
	while (*a && *a == *b) a++, b++;
	return *a == *b;
}

static i64 open_at(const char *path, i64 flags, i64 mode) { return sys(SYS_open, (i64)path, flags | O_CLOEXEC, mode, 0); }
static i64 close_fd(i64 fd) { return sys(SYS_close, fd, 0, 0, 0); }
static i64 stat_at(const char *path, struct kstat *st) { return sys(SYS_stat, (i64)path, (i64)st, 0, 0); }

// pwrite/pread until done (the FUSE client splits large requests); bytes moved (read: fewer at EOF) or -errno.
static i64 write_all(i64 fd, const void *buf, u64 n, u64 off) {
	for (u64 done = 0; done < n;) {
		i64 r = sys(SYS_pwrite64, fd, (i64)buf + (i64)done, (i64)(n - done), (i64)(off + done));
		if (r <= 0) return r < 0 ? r : -5; // EIO: no progress
		done += (u64)r;
	}
	return (i64)n;
}

static i64 read_all(i64 fd, void *buf, u64 n, u64 off) {
	u64 done = 0;
	while (done < n) {
		i64 r = sys(SYS_pread64, fd, (i64)buf + (i64)done, (i64)(n - done), (i64)(off + done));
		if (r < 0) return r;
		if (r == 0) break;
		done += (u64)r;
	}
	return (i64)done;
}

// Creates path (it must not exist) holding text; 0 or -errno.
static i64 make_file(const char *path, const char *text, i64 mode) {
	i64 fd = open_at(path, O_CREAT | O_EXCL | O_WRONLY, mode);
	if (fd < 0) return fd;
	i64 r = write_all(fd, text, slen(text), 0);
	i64 c = close_fd(fd);
	return r < 0 ? r : c;
}

// Whether path holds exactly text; err gets the errno of a failed open/read.
static i64 err; // the failing call's result, shown on the FAIL line

static int holds(const char *path, const char *text) {
	i64 fd = open_at(path, O_RDONLY, 0);
	if (fd < 0) return err = fd, 0;
	u64 n = slen(text);
	char buf[64];
	i64 r = n < sizeof buf ? read_all(fd, buf, n + 1, 0) : -22;
	close_fd(fd);
	if (r < 0) return err = r, 0;
	return (u64)r == n && same(buf, text, n);
}

static int all_bytes(const unsigned char *p, u64 n, unsigned char v) {
	for (u64 i = 0; i < n; i++)
		if (p[i] != v) return 0;
	return 1;
}

// In a check: a system call that must succeed (its result is the value), a condition, a call that must fail with e.
#define TRY(call, what) ({ i64 r_ = (call); if (r_ < 0) { err = r_; return what; } r_; })
#define EXPECT(cond, what) do { if (!(cond)) return what; } while (0)
#define EXPECT_ERRNO(call, e, what) do { i64 r_ = (call); if (r_ != -(e)) { err = r_ < 0 ? r_ : 0; return what; } } while (0)

static u64 oks, fails, many = 200;

static void report(const char *name, const char *why) {
	put("fstest: ");
	put(why ? "FAIL " : "ok ");
	put(name);
	if (why) {
		put(": ");
		put(why);
		if (err) {
			put(": errno ");
			put_u((u64)-err);
		}
		fails++;
	} else {
		oks++;
	}
	flush();
	err = 0;
}

static const char *write_read(void) {
	i64 fd = TRY(open_at("out/pattern-1MiB", O_CREAT | O_EXCL | O_WRONLY, 0644), "create out/pattern-1MiB");
	i64 r = write_all(fd, pattern, MiB, 0);
	close_fd(fd);
	TRY(r, "write 1 MiB");
	fd = TRY(open_at("out/pattern-1MiB", O_RDONLY, 0), "reopen");
	memset(back, 0, MiB);
	r = read_all(fd, back, MiB + 1, 0);
	close_fd(fd);
	EXPECT(TRY(r, "read back") == (i64)MiB, "read back a size other than 1 MiB");
	EXPECT(same(back, pattern, MiB), "read back other bytes than written");
	struct kstat st;
	TRY(stat_at("out/pattern-1MiB", &st), "stat");
	EXPECT(st.size == (i64)MiB, "stat size is not 1 MiB");
	return 0;
}

static const char *rename_file(void) {
	TRY(make_file("work/rename-a", "renamed\n", 0644), "create work/rename-a");
	TRY(sys(SYS_rename, (i64)"work/rename-a", (i64)"out/renamed", 0, 0), "rename to out/renamed");
	struct kstat st;
	EXPECT_ERRNO(stat_at("work/rename-a", &st), ENOENT, "the old name still exists");
	EXPECT(holds("out/renamed", "renamed\n"), "out/renamed has the wrong content");
	return 0;
}

static const char *rename_over(void) {
	TRY(make_file("out/replaced", "old\n", 0644), "create out/replaced");
	TRY(make_file("work/replace", "new\n", 0644), "create work/replace");
	TRY(sys(SYS_rename, (i64)"work/replace", (i64)"out/replaced", 0, 0), "rename over out/replaced");
	EXPECT(holds("out/replaced", "new\n"), "out/replaced does not hold the renamed file");
	return 0;
}

static i64 renameat2(const char *from, const char *to, i64 flags) {
	return sys6(SYS_renameat2, AT_FDCWD, (i64)from, AT_FDCWD, (i64)to, flags, 0);
}

static const char *rename_noreplace(void) {
	TRY(make_file("work/noreplace", "x\n", 0644), "create work/noreplace");
	EXPECT_ERRNO(renameat2("work/noreplace", "out/replaced", RENAME_NOREPLACE), EEXIST, "did not fail with EEXIST");
	EXPECT(holds("out/replaced", "new\n"), "the target changed");
	TRY(sys(SYS_unlink, (i64)"work/noreplace", 0, 0, 0), "unlink work/noreplace");
	return 0;
}

static const char *rename_exchange(void) {
	TRY(make_file("out/swap-a", "a\n", 0644), "create out/swap-a");
	TRY(make_file("out/swap-b", "b\n", 0644), "create out/swap-b");
	TRY(renameat2("out/swap-a", "out/swap-b", RENAME_EXCHANGE), "renameat2 RENAME_EXCHANGE");
	EXPECT(holds("out/swap-a", "b\n") && holds("out/swap-b", "a\n"), "the files were not exchanged");
	return 0;
}

static const char *unlink_file(void) {
	TRY(make_file("work/gone", "gone\n", 0644), "create work/gone");
	TRY(sys(SYS_unlink, (i64)"work/gone", 0, 0, 0), "unlink");
	EXPECT_ERRNO(open_at("work/gone", O_RDONLY, 0), ENOENT, "open after unlink did not fail with ENOENT");
	EXPECT_ERRNO(sys(SYS_unlink, (i64)"work/gone", 0, 0, 0), ENOENT, "a second unlink did not fail with ENOENT");
	return 0;
}

static const char *mkdir_rmdir(void) {
	TRY(sys(SYS_mkdir, (i64)"work/d", 0755, 0, 0), "mkdir work/d");
	EXPECT_ERRNO(sys(SYS_mkdir, (i64)"work/d", 0755, 0, 0), EEXIST, "mkdir of an existing directory: no EEXIST");
	TRY(make_file("work/d/f", "f\n", 0644), "create work/d/f");
	EXPECT_ERRNO(sys(SYS_rmdir, (i64)"work/d", 0, 0, 0), ENOTEMPTY, "rmdir of a non-empty directory: no ENOTEMPTY");
	TRY(sys(SYS_unlink, (i64)"work/d/f", 0, 0, 0), "unlink work/d/f");
	TRY(sys(SYS_rmdir, (i64)"work/d", 0, 0, 0), "rmdir of the emptied directory");
	struct kstat st;
	EXPECT_ERRNO(stat_at("work/d", &st), ENOENT, "the directory still exists");
	return 0;
}

static const char *symlink_readlink(void) {
	TRY(sys(SYS_symlink, (i64)"pattern-1MiB", (i64)"out/link", 0, 0), "symlink out/link");
	char buf[64];
	i64 n = TRY(sys(SYS_readlink, (i64)"out/link", (i64)buf, sizeof buf, 0), "readlink");
	EXPECT(n == 12 && same(buf, "pattern-1MiB", 12), "readlink returned another target");
	struct kstat st;
	TRY(sys(SYS_lstat, (i64)"out/link", (i64)&st, 0, 0), "lstat");
	EXPECT((st.mode & S_IFMT) == S_IFLNK, "lstat: not a symlink");
	TRY(stat_at("out/link", &st), "stat through the symlink");
	EXPECT(st.size == (i64)MiB, "stat through the symlink: size is not 1 MiB");
	return 0;
}

static const char *hardlink(void) {
	TRY(sys(SYS_link, (i64)"out/pattern-1MiB", (i64)"out/hard", 0, 0), "link out/hard");
	struct kstat a, b;
	TRY(stat_at("out/pattern-1MiB", &a), "stat out/pattern-1MiB");
	TRY(stat_at("out/hard", &b), "stat out/hard");
	EXPECT(a.ino == b.ino, "different inode numbers");
	EXPECT(a.nlink == 2 && b.nlink == 2, "nlink is not 2");
	return 0;
}

static const char *change_mode(void) {
	TRY(make_file("out/mode-0640", "mode\n", 0600), "create out/mode-0640");
	TRY(sys(SYS_chmod, (i64)"out/mode-0640", 0640, 0, 0), "chmod 0640");
	struct kstat st;
	TRY(stat_at("out/mode-0640", &st), "stat");
	EXPECT((st.mode & 07777) == 0640, "mode is not 0640 after chmod");
	return 0;
}

static const char *change_owner(void) {
	TRY(make_file("out/owned", "owned\n", 0644), "create out/owned");
	TRY(sys(SYS_chown, (i64)"out/owned", 1000, 1000, 0), "chown 1000:1000");
	struct kstat st;
	TRY(stat_at("out/owned", &st), "stat");
	EXPECT(st.uid == 1000 && st.gid == 1000, "owner is not 1000:1000 after chown");
	return 0;
}

static const char *truncate_file(void) {
	TRY(make_file("out/truncated", "0123456789", 0644), "create out/truncated");
	TRY(sys(SYS_truncate, (i64)"out/truncated", 100000, 0, 0), "truncate up to 100000");
	struct kstat st;
	TRY(stat_at("out/truncated", &st), "stat");
	EXPECT(st.size == 100000, "size is not 100000 after truncating up");
	i64 fd = TRY(open_at("out/truncated", O_RDONLY, 0), "open");
	i64 n = read_all(fd, back, 100000, 0);
	close_fd(fd);
	EXPECT(TRY(n, "read") == 100000, "read a size other than 100000");
	EXPECT(same(back, "0123456789", 10) && all_bytes(back + 10, 100000 - 10, 0), "the extension is not zeros");
	TRY(sys(SYS_truncate, (i64)"out/truncated", 4, 0, 0), "truncate down to 4");
	EXPECT(holds("out/truncated", "0123"), "content is not \"0123\" after truncating down");
	return 0;
}

static const char *set_times(void) {
	TRY(make_file("out/times", "times\n", 0644), "create out/times");
	i64 ts[4] = {1000000000, 0, 1234567890, 123456789}; // atime, mtime
	TRY(sys(SYS_utimensat, AT_FDCWD, (i64)"out/times", (i64)ts, 0), "utimensat");
	struct kstat st;
	TRY(stat_at("out/times", &st), "stat");
	EXPECT(st.atime == 1000000000 && st.atime_ns == 0, "atime is not 1000000000.0");
	EXPECT(st.mtime == 1234567890 && st.mtime_ns == 123456789, "mtime is not 1234567890.123456789");
	return 0;
}

// Whether the NUL-separated list holds name.
static int listed(const char *list, i64 n, const char *name) {
	u64 want = slen(name) + 1;
	for (i64 i = 0; i < n;) {
		u64 l = slen(list + i) + 1;
		if (l == want && same(list + i, name, l)) return 1;
		i += (i64)l;
	}
	return 0;
}

static const char *xattrs(void) {
	const char *f = "out/xattr";
	TRY(make_file(f, "xattr\n", 0644), "create out/xattr");
	TRY(sys6(SYS_setxattr, (i64)f, (i64)"user.hako", (i64)"yes", 3, 0, 0), "setxattr user.hako");
	TRY(sys6(SYS_setxattr, (i64)f, (i64)"user.gone", (i64)"1", 1, 0, 0), "setxattr user.gone");
	EXPECT_ERRNO(sys6(SYS_setxattr, (i64)f, (i64)"user.hako", (i64)"no", 2, XATTR_CREATE, 0), EEXIST,
		     "XATTR_CREATE of an existing name: no EEXIST");
	char buf[256];
	i64 n = TRY(sys(SYS_getxattr, (i64)f, (i64)"user.hako", (i64)buf, sizeof buf), "getxattr user.hako");
	EXPECT(n == 3 && same(buf, "yes", 3), "getxattr user.hako is not \"yes\"");
	n = TRY(sys(SYS_listxattr, (i64)f, (i64)buf, sizeof buf, 0), "listxattr");
	EXPECT(listed(buf, n, "user.hako") && listed(buf, n, "user.gone"), "listxattr lacks user.hako or user.gone");
	TRY(sys(SYS_removexattr, (i64)f, (i64)"user.gone", 0, 0), "removexattr user.gone");
	EXPECT_ERRNO(sys(SYS_getxattr, (i64)f, (i64)"user.gone", (i64)buf, sizeof buf), ENODATA,
		     "getxattr after removexattr: no ENODATA");
	n = TRY(sys(SYS_listxattr, (i64)f, (i64)buf, sizeof buf, 0), "listxattr after removexattr");
	EXPECT(!listed(buf, n, "user.gone"), "listxattr still names user.gone");
	return 0;
}

static const char *sparse(void) {
	i64 fd = TRY(open_at("out/sparse", O_CREAT | O_EXCL | O_RDWR, 0644), "create out/sparse");
	const char *why = 0;
	struct kstat st;
	i64 r = write_all(fd, pattern, 4096, SPARSE_AT);
	if (r < 0) {
		err = r, why = "pwrite 4096 bytes at 5 GiB";
	} else if ((r = sys(SYS_fstat, fd, (i64)&st, 0, 0)) < 0 || st.size != (i64)(SPARSE_AT + 4096)) {
		err = r < 0 ? r : 0, why = "size is not 5 GiB + 4096";
	} else if (st.blocks * 512 >= (i64)MiB) {
		why = "the file is not sparse (1 MiB or more allocated)";
	} else if ((r = sys(SYS_lseek, fd, 0, SEEK_DATA, 0)) != (i64)SPARSE_AT) {
		err = r < 0 ? r : 0, why = "SEEK_DATA from 0 is not 5 GiB";
	} else if ((r = sys(SYS_lseek, fd, 0, SEEK_HOLE, 0)) != 0) {
		err = r < 0 ? r : 0, why = "SEEK_HOLE from 0 is not 0";
	} else if ((r = sys(SYS_lseek, fd, (i64)SPARSE_AT, SEEK_HOLE, 0)) != (i64)(SPARSE_AT + 4096)) {
		err = r < 0 ? r : 0, why = "SEEK_HOLE from 5 GiB is not the end";
	} else if ((r = read_all(fd, back, 4096, 4UL << 30)) != 4096 || !all_bytes(back, 4096, 0)) {
		err = r < 0 ? r : 0, why = "the hole at 4 GiB does not read as zeros";
	} else if ((r = read_all(fd, back, 8192, SPARSE_AT)) != 4096 || !same(back, pattern, 4096)) {
		err = r < 0 ? r : 0, why = "the data at 5 GiB reads back wrong";
	}
	close_fd(fd);
	return why;
}

// "many/fNNNN"
static void many_name(char *name, u64 i) {
	const char *prefix = "many/f";
	for (u64 k = 0; k < 6; k++) name[k] = prefix[k];
	for (int k = 9; k >= 6; k--, i /= 10) name[k] = (char)('0' + i % 10);
	name[10] = 0;
}

static const char *many_files(void) {
	static unsigned char seen[MAX_MANY];
	char name[16];
	TRY(sys(SYS_mkdir, (i64)"many", 0755, 0, 0), "mkdir many");
	for (u64 i = 0; i < many; i++) {
		many_name(name, i);
		close_fd(TRY(open_at(name, O_CREAT | O_EXCL | O_WRONLY, 0644), "create a file in many/"));
	}
	i64 dir = TRY(open_at("many", O_RDONLY | O_DIRECTORY, 0), "open many/");
	u64 found = 0, other = 0;
	i64 n;
	while ((n = sys(SYS_getdents64, dir, (i64)dents, sizeof dents, 0)) > 0) {
		for (i64 at = 0; at < n;) {
			// struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, char name[]
			unsigned short reclen = *(unsigned short *)(dents + at + 16);
			const char *d = dents + at + 19;
			at += reclen;
			if (d[0] == '.' && (d[1] == 0 || (d[1] == '.' && d[2] == 0))) continue;
			u64 i = 0;
			int ok = d[0] == 'f' && slen(d) == 5;
			for (int k = 1; ok && k < 5; k++) ok = d[k] >= '0' && d[k] <= '9', i = i * 10 + (u64)(d[k] - '0');
			if (ok && i < many && !seen[i]) {
				seen[i] = 1, found++;
			} else {
				other++;
			}
		}
	}
	close_fd(dir);
	TRY(n, "getdents64");
	EXPECT(other == 0, "readdir returned unexpected or repeated names");
	EXPECT(found == many, "readdir did not return every file created");
	return 0;
}

// Two processes write 4 KiB blocks into their own half of one file at the same time.
static const char *concurrent(void) {
	i64 fd = TRY(open_at("out/concurrent", O_CREAT | O_EXCL | O_RDWR, 0644), "create out/concurrent");
	for (u64 k = 0; k < 2; k++) {
		i64 pid = sys(SYS_fork, 0, 0, 0, 0);
		if (pid < 0) {
			close_fd(fd);
			return err = pid, "fork";
		}
		if (pid == 0) {
			static unsigned char block[4096];
			memset(block, (int)('A' + k), sizeof block);
			for (u64 off = 0; off < HALF; off += sizeof block) {
				if (write_all(fd, block, sizeof block, k * HALF + off) < 0) exit_with(1);
				sys(SYS_sched_yield, 0, 0, 0, 0);
			}
			exit_with(0);
		}
	}
	int status = 0, bad = 0;
	for (int k = 0; k < 2; k++) {
		if (sys(SYS_wait4, -1, (i64)&status, 0, 0) < 0 || status != 0) bad = 1;
	}
	i64 n = read_all(fd, back, 2 * HALF + 1, 0);
	close_fd(fd);
	EXPECT(!bad, "a writer process failed");
	EXPECT(TRY(n, "read") == (i64)(2 * HALF), "the file is not 512 KiB");
	EXPECT(all_bytes(back, HALF, 'A') && all_bytes(back + HALF, HALF, 'B'), "a region holds the other writer's bytes");
	return 0;
}

static const char *allocate(void) {
	i64 fd = TRY(open_at("out/fallocate", O_CREAT | O_EXCL | O_RDWR, 0644), "create out/fallocate");
	const char *why = 0;
	struct kstat st;
	i64 r = sys(SYS_fallocate, fd, 0, 0, (i64)MiB);
	if (r < 0) {
		err = r, why = "fallocate 1 MiB";
	} else if ((r = sys(SYS_fallocate, fd, FALLOC_FL_KEEP_SIZE, (i64)MiB, (i64)MiB)) < 0) {
		err = r, why = "fallocate KEEP_SIZE beyond the end";
	} else if ((r = sys(SYS_fstat, fd, (i64)&st, 0, 0)) < 0 || st.size != (i64)MiB) {
		err = r < 0 ? r : 0, why = "size is not 1 MiB";
	} else if ((r = read_all(fd, back, MiB + 1, 0)) != (i64)MiB || !all_bytes(back, MiB, 0)) {
		err = r < 0 ? r : 0, why = "does not read back as 1 MiB of zeros";
	}
	close_fd(fd);
	return why;
}

static const char *sync_files(void) {
	i64 fd = TRY(open_at("work/synced", O_CREAT | O_EXCL | O_WRONLY, 0644), "create work/synced");
	i64 r = write_all(fd, pattern, 65536, 0);
	if (r >= 0) r = sys(SYS_fsync, fd, 0, 0, 0);
	if (r >= 0) r = sys(SYS_fdatasync, fd, 0, 0, 0);
	close_fd(fd);
	TRY(r, "write, fsync or fdatasync");
	fd = TRY(open_at("out", O_RDONLY | O_DIRECTORY, 0), "open out/");
	r = sys(SYS_fsync, fd, 0, 0, 0);
	close_fd(fd);
	TRY(r, "fsync of a directory");
	TRY(sys(SYS_unlink, (i64)"work/synced", 0, 0, 0), "unlink work/synced");
	return 0;
}

static const char *fs_stats(void) {
	u64 st[15]; // struct statfs: type, bsize, blocks, bfree, bavail, files, ffree, fsid, namelen, frsize, ...
	TRY(sys(SYS_statfs, (i64)".", (i64)st, 0, 0), "statfs");
	EXPECT(st[0] == FUSE_SUPER_MAGIC, "f_type is not FUSE_SUPER_MAGIC");
	EXPECT(st[1] > 0 && st[2] > 0 && st[3] <= st[2] && st[8] > 0, "implausible sizes (bsize, blocks, bfree, namelen)");
	return 0;
}

static void semantics(void) {
	for (u64 i = 0; i < MiB; i++) pattern[i] = (unsigned char)(i * 7 % 251);
	i64 r = sys(SYS_mkdir, (i64)"out", 0755, 0, 0);
	if (r < 0) die("mkdir DIR/out (DIR must be empty)", r);
	if ((r = sys(SYS_mkdir, (i64)"work", 0755, 0, 0)) < 0) die("mkdir DIR/work", r);
	static const struct {
		const char *name;
		const char *(*run)(void);
	} checks[] = {
		{"write-read", write_read},
		{"rename", rename_file},
		{"rename-over", rename_over},
		{"rename-noreplace", rename_noreplace},
		{"rename-exchange", rename_exchange},
		{"unlink", unlink_file},
		{"mkdir-rmdir", mkdir_rmdir},
		{"symlink", symlink_readlink},
		{"hardlink", hardlink},
		{"chmod", change_mode},
		{"chown", change_owner},
		{"truncate", truncate_file},
		{"utimensat", set_times},
		{"xattr", xattrs},
		{"sparse", sparse},
		{"many-files", many_files},
		{"concurrent-writers", concurrent},
		{"fallocate", allocate},
		{"fsync", sync_files},
		{"statfs", fs_stats},
	};
	for (u64 i = 0; i < sizeof checks / sizeof checks[0]; i++) report(checks[i].name, checks[i].run());
	r = sys(SYS_rmdir, (i64)"work", 0, 0, 0);
	err = r;
	report("cleanup", r < 0 ? "rmdir DIR/work (a check left files there)" : 0);
}

// --readonly: each kind of write on a read-only share must fail with EROFS.
static char ro_file[256]; // a regular file found in DIR

static const char *expect_erofs(i64 r) {
	if (r == -EROFS) return 0;
	err = r < 0 ? r : 0;
	return r < 0 ? "failed, but not with EROFS" : "succeeded on a read-only share";
}

static const char *need_file(void) { return ro_file[0] ? 0 : "DIR holds no regular file to try it on"; }

static void readonly(void) {
	i64 dir = open_at(".", O_RDONLY | O_DIRECTORY, 0);
	if (dir < 0) die("open DIR", dir);
	i64 n;
	while (!ro_file[0] && (n = sys(SYS_getdents64, dir, (i64)dents, sizeof dents, 0)) > 0) {
		for (i64 at = 0; at < n && !ro_file[0]; at += *(unsigned short *)(dents + at + 16)) {
			const char *d = dents + at + 19;
			if (dents[at + 18] == DT_REG && slen(d) < sizeof ro_file) memcpy(ro_file, d, slen(d) + 1);
		}
	}
	close_fd(dir);
	const char *f = ro_file;
	i64 fd = open_at("ro-created", O_CREAT | O_WRONLY, 0644);
	if (fd >= 0) close_fd(fd);
	report("create", expect_erofs(fd));
	if (need_file()) {
		report("write", need_file());
	} else {
		fd = open_at(f, O_WRONLY, 0);
		if (fd >= 0) {
			i64 w = sys(SYS_pwrite64, fd, (i64)"x", 1, 0);
			close_fd(fd);
			fd = w < 0 ? w : 0;
		}
		report("write", expect_erofs(fd));
	}
	report("mkdir", expect_erofs(sys(SYS_mkdir, (i64)"ro-dir", 0755, 0, 0)));
	report("unlink", need_file() ? need_file() : expect_erofs(sys(SYS_unlink, (i64)f, 0, 0, 0)));
	report("rename", need_file() ? need_file() : expect_erofs(sys(SYS_rename, (i64)f, (i64)"ro-renamed", 0, 0)));
	report("chmod", need_file() ? need_file() : expect_erofs(sys(SYS_chmod, (i64)f, 0600, 0, 0)));
	report("setxattr", need_file() ? need_file()
				       : expect_erofs(sys6(SYS_setxattr, (i64)f, (i64)"user.hako", (i64)"yes", 3, 0, 0)));
	report("truncate", need_file() ? need_file() : expect_erofs(sys(SYS_truncate, (i64)f, 0, 0, 0)));
	report("symlink", expect_erofs(sys(SYS_symlink, (i64)"target", (i64)"ro-symlink", 0, 0)));
	report("link", need_file() ? need_file() : expect_erofs(sys(SYS_link, (i64)f, (i64)"ro-link", 0, 0)));
	const char *why = need_file();
	if (!why) {
		fd = open_at(f, O_RDONLY, 0);
		i64 r = fd < 0 ? fd : sys(SYS_read, fd, (i64)back, 4096, 0);
		if (fd >= 0) close_fd(fd);
		if (r < 0) err = r, why = "reading a file of the read-only share";
	}
	report("read", why);
}

// --escape: see the top of this file.
static u64 attempts, opened;

static void show(const char *what, const char *attempt, const char *path) {
	put("escape: ");
	put(what);
	put(" ");
	put(attempt);
	put(" ");
	put(path);
}

// Tries to read path, and with `append` to append to it; reports what worked.
static void try_path(const char *attempt, const char *path, int append) {
	attempts++;
	i64 fd = open_at(path, O_RDONLY, 0);
	if (fd >= 0) {
		char buf[61];
		i64 n = sys(SYS_read, fd, (i64)buf, 60, 0), i = 0;
		close_fd(fd);
		opened++;
		for (; i < n && buf[i] != '\n'; i++) buf[i] = buf[i] >= ' ' && buf[i] < 127 ? buf[i] : '?';
		buf[i] = 0;
		show("read", attempt, path);
		put(": ");
		put(buf);
		flush();
	}
	fd = append ? open_at(path, O_WRONLY | O_APPEND, 0) : -1;
	if (fd >= 0) {
		i64 n = sys(SYS_write, fd, (i64)"escaped\n", 8, 0);
		close_fd(fd);
		if (n > 0) {
			opened++;
			show("wrote", attempt, path);
			flush();
		}
	}
}

// Each escape target below a base path; only the canary is written to (etc/passwd would be the guest's own).
static void try_targets(const char *attempt, const char *base) {
	static const char *const targets[] = {"hako-canary", "etc/passwd"};
	char path[200];
	for (u64 t = 0; t < 2; t++) {
		u64 n = 0;
		for (const char *s = base; *s && n < 100; s++) path[n++] = *s;
		for (const char *s = targets[t]; *s; s++) path[n++] = *s;
		path[n] = 0;
		try_path(attempt, path, t == 0);
	}
}

static i64 share_fd; // DIR

// Runs child() over and over in a forked process (working directory DIR) while this one calls parent() `rounds`
// times, then kills and reaps the child.
static void race(void (*child)(void), void (*parent)(void), int rounds) {
	i64 pid = sys(SYS_fork, 0, 0, 0, 0);
	if (pid < 0) die("fork", pid);
	if (pid == 0) {
		sys(SYS_fchdir, share_fd, 0, 0, 0);
		for (;;) child();
	}
	for (int i = 0; i < rounds; i++) {
		parent();
		sys(SYS_sched_yield, 0, 0, 0, 0);
	}
	sys(62 /* kill */, pid, 9 /* SIGKILL */, 0, 0);
	int status;
	sys(SYS_wait4, pid, (i64)&status, 0, 0);
}

static void swap_link(void) { renameat2("escape/swap", "escape/swap-other", RENAME_EXCHANGE); }
static void open_through_swap(void) { try_targets("symlink-swap", "escape/swap/"); }
static void move_dir(void) {
	sys(SYS_rename, (i64)"escape/walk/a/b", (i64)"escape/moved-b", 0, 0);
	sys(SYS_rename, (i64)"escape/moved-b", (i64)"escape/walk/a/b", 0, 0);
}
static void walk_up(void) { try_targets("rename-walk", "../../../../../../../"); } // from escape/walk/a/b/c

static void escape(void) {
	i64 r = share_fd = open_at(".", O_RDONLY | O_DIRECTORY, 0);
	if (r < 0) die("open DIR", r);
	if ((r = sys(SYS_mkdir, (i64)"escape", 0755, 0, 0)) < 0) die("mkdir DIR/escape", r);
	// A symlink to / followed.
	if ((r = sys(SYS_symlink, (i64)"/", (i64)"escape/root", 0, 0)) < 0) die("symlink escape/root", r);
	try_targets("symlink-root", "escape/root/");
	// ".." chains from the root of the mount.
	try_targets("dotdot", "../");
	try_targets("dotdot", "../../../../../../../../");
	try_targets("dotdot", "escape/../../");
	// "escape/swap" is a real directory or a symlink to /, exchanged while this process opens paths through it.
	if ((r = sys(SYS_mkdir, (i64)"escape/swap", 0755, 0, 0)) < 0) die("mkdir escape/swap", r);
	if ((r = sys(SYS_symlink, (i64)"/", (i64)"escape/swap-other", 0, 0)) < 0) die("symlink escape/swap-other", r);
	race(swap_link, open_through_swap, 100);
	// A directory renamed back and forth while a process inside it walks "..": stays in the share or the guest.
	if ((r = sys(SYS_mkdir, (i64)"escape/walk", 0755, 0, 0)) < 0 || (r = sys(SYS_mkdir, (i64)"escape/walk/a", 0755, 0, 0)) < 0 ||
	    (r = sys(SYS_mkdir, (i64)"escape/walk/a/b", 0755, 0, 0)) < 0 ||
	    (r = sys(SYS_mkdir, (i64)"escape/walk/a/b/c", 0755, 0, 0)) < 0)
		die("mkdir escape/walk/a/b/c", r);
	if ((r = sys(SYS_chdir, (i64)"escape/walk/a/b/c", 0, 0, 0)) < 0) die("chdir escape/walk/a/b/c", r);
	race(move_dir, walk_up, 100);
	put("escape: done ");
	put_u(attempts);
	put(" attempts ");
	put_u(opened);
	put(" opened");
	flush();
}

void tool_main(char **argv, char **envp) {
	for (char **e = envp; *e; e++) {
		const char *k = "HAKO_FSTEST_MANY=", *v = *e;
		while (*k && *k == *v) k++, v++;
		if (!*k && (!parse_u(v, &many) || many == 0 || many > MAX_MANY)) die("HAKO_FSTEST_MANY must be 1..10000", 0);
	}
	int mode = 0; // 0 semantics, 1 escape, 2 readonly
	char **arg = argv + 1;
	if (*arg && streq(*arg, "--escape")) mode = 1, arg++;
	else if (*arg && streq(*arg, "--readonly")) mode = 2, arg++;
	if (!arg[0] || arg[1]) die("usage: hako-fstest [--escape | --readonly] DIR", 0);
	i64 r = sys(SYS_chdir, (i64)arg[0], 0, 0, 0);
	if (r < 0) die("chdir DIR", r);
	if (mode == 1) {
		escape();
		exit_with(0);
	}
	if (mode == 0) semantics();
	else readonly();
	sys(SYS_sync, 0, 0, 0, 0); // init powers off without syncing
	put("fstest: done ");
	put_u(oks);
	put(" ok ");
	put_u(fails);
	put(" failed");
	flush();
	exit_with(fails ? 1 : 0);
}
