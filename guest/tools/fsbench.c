// hako-fsbench DIR [SEQ_MIB [FILES]]: file-system throughput on a virtio-fs mount (DIR) from inside the guest, for
// hako.init=fsbench. Defaults: SEQ_MIB 256, FILES 2000 (smaller values keep runs short where guest kernel code is
// emulated). Four results, one line each (MB/s is 10^6 bytes/s):
//   fsbench: seq-write MB/s X       write DIR/fsbench-seq in 1 MiB blocks, then fsync (timed together)
//   fsbench: seq-read MB/s X        read it back in 1 MiB blocks after dropping the guest's caches
//   fsbench: create-files files/s X untar-like: DIR/fsbench-tree/dNN/ (100 files each), each file created and
//                                   written with 1 to 8 KiB
//   fsbench: stat-walk files/s X    after dropping caches again: readdir every directory and lstat every entry
//   fsbench: done
// or "fsbench: error: <what>" and exit status 1. DIR/fsbench-seq is removed afterwards, DIR/fsbench-tree is left.
// Freestanding: see sys.h.

#define TOOL_NAME "fsbench"
#include "sys.h"

#define SYS_read 0
#define SYS_open 2
#define SYS_close 3
#define SYS_fsync 74
#define SYS_mkdir 83
#define SYS_unlink 87
#define SYS_sync 162
#define SYS_getdents64 217
#define SYS_newfstatat 262
#define O_RDONLY 0
#define O_WRONLY 01
#define O_CREAT 0100
#define O_EXCL 0200
#define O_DIRECTORY 0200000
#define O_CLOEXEC 02000000
#define AT_SYMLINK_NOFOLLOW 0x100

#define BLOCK (1UL << 20)
#define PER_DIR 100

static unsigned char buf[BLOCK];

static i64 open_at(const char *path, i64 flags) { return sys(SYS_open, (i64)path, flags | O_CLOEXEC, 0644, 0); }

static void check(i64 r, const char *what) {
	if (r < 0) die(what, r);
}

// Prints count / divisor per second with one decimal.
static void rate(const char *name, const char *unit, u64 count, u64 divisor, u64 ns) {
	u64 us = ns / 1000 ? ns / 1000 : 1;
	put("fsbench: ");
	put(name);
	put(" ");
	put(unit);
	put(" ");
	put_fixed(count * 10000000 / us / divisor, 1); // count < 2^40 (64 GiB) keeps this within 64 bits
	flush();
}

// Writes back dirty data and drops the page, dentry and inode caches, so reads and lookups reach the device.
static void drop_caches(void) {
	sys(SYS_sync, 0, 0, 0, 0);
	i64 fd = open_at("/proc/sys/vm/drop_caches", O_WRONLY);
	check(fd, "open /proc/sys/vm/drop_caches");
	check(sys(SYS_write, fd, (i64)"3\n", 2, 0), "write /proc/sys/vm/drop_caches");
	sys(SYS_close, fd, 0, 0, 0);
}

static void sequential(u64 mib) {
	for (u64 i = 0; i < BLOCK; i++) buf[i] = (unsigned char)(i * 131 + 7);
	i64 fd = open_at("fsbench-seq", O_CREAT | O_EXCL | O_WRONLY);
	check(fd, "create DIR/fsbench-seq (DIR must not hold one)");
	u64 start = now_ns();
	for (u64 i = 0; i < mib; i++) {
		i64 n = sys(SYS_write, fd, (i64)buf, BLOCK, 0);
		if (n != (i64)BLOCK) die("write", n < 0 ? n : 0);
	}
	check(sys(SYS_fsync, fd, 0, 0, 0), "fsync");
	rate("seq-write", "MB/s", mib * BLOCK, 1000000, now_ns() - start);
	sys(SYS_close, fd, 0, 0, 0);

	drop_caches();
	fd = open_at("fsbench-seq", O_RDONLY);
	check(fd, "open DIR/fsbench-seq");
	start = now_ns();
	u64 total = 0;
	for (i64 n; (n = sys(SYS_read, fd, (i64)buf, BLOCK, 0)) != 0; total += (u64)n) check(n, "read");
	rate("seq-read", "MB/s", total, 1000000, now_ns() - start);
	sys(SYS_close, fd, 0, 0, 0);
	if (total != mib * BLOCK) die("read back fewer bytes than written", 0);
	check(sys(SYS_unlink, (i64)"fsbench-seq", 0, 0, 0), "unlink DIR/fsbench-seq");
}

// "fsbench-tree/dNN" or "fsbench-tree/dNN/fNNNN" into name.
static void tree_name(char *name, u64 dir, u64 file, int with_file) {
	const char *s = "fsbench-tree/d";
	u64 n = 0;
	while (*s) name[n++] = *s++;
	name[n++] = (char)('0' + dir / 10 % 10), name[n++] = (char)('0' + dir % 10);
	if (with_file) {
		name[n++] = '/', name[n++] = 'f';
		for (u64 scale = 1000; scale; scale /= 10) name[n++] = (char)('0' + file / scale % 10);
	}
	name[n] = 0;
}

static void create_tree(u64 files) {
	char name[40];
	u64 start = now_ns();
	check(sys(SYS_mkdir, (i64)"fsbench-tree", 0755, 0, 0), "mkdir DIR/fsbench-tree (DIR must not hold one)");
	for (u64 i = 0; i < files; i++) {
		if (i % PER_DIR == 0) {
			tree_name(name, i / PER_DIR, 0, 0);
			check(sys(SYS_mkdir, (i64)name, 0755, 0, 0), "mkdir in DIR/fsbench-tree");
		}
		tree_name(name, i / PER_DIR, i, 1);
		i64 fd = open_at(name, O_CREAT | O_EXCL | O_WRONLY);
		check(fd, "create a file in DIR/fsbench-tree");
		u64 size = 1024 + i * 7919 % 7169; // 1 KiB to 8 KiB
		i64 n = sys(SYS_write, fd, (i64)buf, (i64)size, 0);
		if (n != (i64)size) die("write a file in DIR/fsbench-tree", n < 0 ? n : 0);
		sys(SYS_close, fd, 0, 0, 0);
	}
	rate("create-files", "files/s", files, 1, now_ns() - start);
}

// Readdir of dir (an open directory) and lstat of each entry but "." and ".."; with recurse, the same one level
// down for each directory. Returns the number of entries.
static u64 walk(i64 dir, int recurse) {
	u64 count = 0;
	i64 n;
	unsigned char st[144]; // struct stat
	char batch[8192]; // per call: the walk one level down has its own
	while ((n = sys(SYS_getdents64, dir, (i64)batch, sizeof batch, 0)) > 0) {
		for (i64 at = 0; at < n; at += *(unsigned short *)(batch + at + 16)) {
			const char *d = batch + at + 19;
			if (d[0] == '.' && (d[1] == 0 || (d[1] == '.' && d[2] == 0))) continue;
			check(sys(SYS_newfstatat, dir, (i64)d, (i64)st, AT_SYMLINK_NOFOLLOW), "lstat in DIR/fsbench-tree");
			count++;
			if (recurse && batch[at + 18] == 4 /* DT_DIR */) {
				i64 sub = sys(257 /* openat */, dir, (i64)d, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
				check(sub, "open a directory in DIR/fsbench-tree");
				count += walk(sub, 0);
				sys(SYS_close, sub, 0, 0, 0);
			}
		}
	}
	check(n, "getdents64");
	return count;
}

static void stat_walk(u64 files) {
	drop_caches();
	u64 start = now_ns();
	i64 root = open_at("fsbench-tree", O_RDONLY | O_DIRECTORY);
	check(root, "open DIR/fsbench-tree");
	u64 count = walk(root, 1);
	sys(SYS_close, root, 0, 0, 0);
	u64 ns = now_ns() - start;
	u64 dirs = (files + PER_DIR - 1) / PER_DIR;
	if (count != files + dirs) die("the walk found a different number of entries than were created", 0);
	rate("stat-walk", "files/s", count, 1, ns);
}

void tool_main(char **argv, char **envp) {
	(void)envp;
	u64 mib = 256, files = 2000;
	if (!argv[1] || (argv[2] && (!parse_u(argv[2], &mib) || (argv[3] && (!parse_u(argv[3], &files) || argv[4])))))
		die("usage: hako-fsbench DIR [SEQ_MIB [FILES]]", 0);
	if (mib == 0 || mib > 65536 || files == 0 || files > 100 * PER_DIR)
		die("SEQ_MIB must be 1..65536 and FILES 1..10000", 0);
	check(sys(80 /* chdir */, (i64)argv[1], 0, 0, 0), "chdir DIR");
	sequential(mib);
	create_tree(files);
	stat_walk(files);
	put("fsbench: done");
	flush();
	exit_with(0);
}
