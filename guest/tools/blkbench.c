// hako-blkbench DEVICE: block-device throughput from inside the guest, for
// `npm run bench -- blk`. Four time-bounded tests at queue depth 1 with
// O_DIRECT (no guest page cache), over the whole device up to 256 MiB:
//   seq-read 1 MiB, seq-write 1 MiB, rand-read 4 KiB, rand-write 4 KiB
// one line each, then a read-back check of the last random write:
//   hako-blkbench: seq-read bs=1048576 bytes=N ops=N secs=S.SSSSSS MBps=M.MMM iops=I.I
//   hako-blkbench: done
// or "hako-blkbench: error: <what>" and exit status 1. MBps is 10^6 bytes/s.
// HAKO_BLKBENCH_SECS (environment, e.g. from the kernel command line) sets the
// seconds per test, default 3. Freestanding: see sys.h.

#define TOOL_NAME "hako-blkbench"
#include "sys.h"

#define SYS_open 2
#define SYS_ioctl 16
#define SYS_pread64 17
#define SYS_pwrite64 18
#define O_RDWR 02
#define O_DIRECT 040000
#define BLKGETSIZE64 0x80081272UL // _IOR(0x12, 114, size_t)

#define SEQ_BS (1UL << 20)
#define RAND_BS 4096UL
#define MAX_REGION (256UL << 20)

// O_DIRECT needs sector-aligned buffers; 4 KiB alignment suits every device.
static unsigned char buf[SEQ_BS] __attribute__((aligned(4096)));

static u64 rng = 0x9e3779b97f4a7c15UL;

static u64 next_random(void) { // xorshift64
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct test {
	const char *name;
	int write, random;
	u64 bs;
};

static i64 fd;
static u64 region, last_write;

static void io(const struct test *t, u64 off) {
	if (t->write) {
		*(u64 *)buf = off; // stamps each block with its offset, for the read-back check
		last_write = off;
	}
	i64 n = sys(t->write ? SYS_pwrite64 : SYS_pread64, fd, (i64)buf, (i64)t->bs, (i64)off);
	if (n != (i64)t->bs) die(t->write ? "pwrite" : "pread", n < 0 ? n : 0);
}

static void run(const struct test *t, u64 limit_ns) {
	// Read the clock after batches, not after every I/O (each system call is
	// slow on PVM hosts); batches double while they are short.
	u64 ops = 0, batch = 1, off = 0, start = now_ns(), elapsed = 0;
	while (elapsed < limit_ns) {
		u64 batch_start = now_ns();
		for (u64 i = 0; i < batch; i++) {
			if (t->random) {
				off = next_random() % (region / t->bs) * t->bs;
			} else if (off + t->bs > region) {
				off = 0;
			}
			io(t, off);
			if (!t->random) off += t->bs;
		}
		ops += batch;
		u64 end = now_ns();
		if (end - batch_start < limit_ns / 64) batch *= 2;
		elapsed = end - start;
	}
	put("hako-blkbench: ");
	put(t->name);
	put(" bs=");
	put_u(t->bs);
	put(" bytes=");
	put_u(ops * t->bs);
	put(" ops=");
	put_u(ops);
	put(" secs=");
	put_fixed(elapsed / 1000, 6);
	put(" MBps=");
	put_fixed(ops * t->bs * 1000000 / elapsed, 3);
	put(" iops=");
	put_fixed(ops * 10000000000UL / elapsed, 1);
	flush();
}

void tool_main(char **argv, char **envp) {
	if (!argv[1]) die("usage: hako-blkbench DEVICE", 0);
	u64 secs = 3;
	for (char **e = envp; *e; e++) {
		const char *k = "HAKO_BLKBENCH_SECS=", *v = *e;
		while (*k && *k == *v) k++, v++;
		if (!*k && !parse_u(v, &secs)) secs = 0;
	}
	if (secs == 0) die("HAKO_BLKBENCH_SECS must be a positive number of seconds", 0);

	fd = sys(SYS_open, (i64)argv[1], O_RDWR | O_DIRECT, 0, 0);
	if (fd < 0) die("open with O_DIRECT", fd);
	i64 err = sys(SYS_ioctl, fd, (i64)BLKGETSIZE64, (i64)&region, 0);
	if (err) die("BLKGETSIZE64", err);
	if (region > MAX_REGION) region = MAX_REGION;
	region &= ~(SEQ_BS - 1);
	if (region == 0) die("device smaller than 1 MiB", 0);

	for (u64 i = 0; i < SEQ_BS; i++) buf[i] = (unsigned char)(i * 131 + 7);
	static const struct test tests[] = {
		{"seq-read", 0, 0, SEQ_BS},
		{"seq-write", 1, 0, SEQ_BS},
		{"rand-read", 0, 1, RAND_BS},
		{"rand-write", 1, 1, RAND_BS},
	};
	for (u64 i = 0; i < sizeof tests / sizeof tests[0]; i++) run(&tests[i], secs * 1000000000UL);

	u64 expect = last_write;
	*(u64 *)buf = ~expect;
	i64 n = sys(SYS_pread64, fd, (i64)buf, (i64)RAND_BS, (i64)expect);
	if (n != (i64)RAND_BS) die("read-back pread", n < 0 ? n : 0);
	if (*(u64 *)buf != expect) die("read-back: the last random write did not persist", 0);
	put("hako-blkbench: done");
	flush();
	exit_with(0);
}
