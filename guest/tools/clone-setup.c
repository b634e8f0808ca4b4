// hako-clone-setup UNIX-NANOSECONDS HEX-SEED [RECEIVED-AT]: run by /init in
// each clone restored from a VM template (host/template/clone.ts), so that
// clones share neither wall time nor RNG state with the template or each other:
//   1. sets CLOCK_REALTIME to UNIX-NANOSECONDS (the host's time) plus the time
//      since RECEIVED-AT, the first field of /proc/uptime (CLOCK_BOOTTIME
//      seconds, e.g. "31.75") when init read the host's line: starting this
//      process takes about a second of emulated kernel code on PVM hosts;
//   2. mixes the seed bytes (32 to 256, from the host's CSPRNG) into the input
//      pool and credits them as entropy (RNDADDENTROPY);
//   3. reseeds the CRNG from that pool at once (RNDRESEEDCRNG). Without this,
//      /dev/urandom and getrandom() keep the template's CRNG key until the
//      next scheduled reseed, so every clone would produce the same bytes.
// Then prints the guest's unix seconds, read back from the clock (for the
// "hako-init: clone" marker, saving init a `date` process), and exits 0; or
// prints "hako-clone-setup: error: <step>..." and exits 1.
// Needs CAP_SYS_ADMIN (init runs it as root). Freestanding: see sys.h.

#define TOOL_NAME "hako-clone-setup"
#include "sys.h"

#define SYS_open 2
#define SYS_ioctl 16
#define SYS_clock_settime 227
#define SYS_clock_gettime 228
#define O_WRONLY 01
#define O_CLOEXEC 02000000
#define CLOCK_REALTIME 0
#define CLOCK_BOOTTIME 7
#define RNDADDENTROPY 0x40085203UL // _IOW('R', 0x03, int[2])
#define RNDRESEEDCRNG 0x5207UL     // _IO('R', 0x07)

#define MIN_SEED 32
#define MAX_SEED 256
#define NS_PER_SEC 1000000000UL

// struct rand_pool_info with room for the seed.
static struct {
	int entropy_count; // bits credited
	int buf_size;      // bytes
	unsigned char buf[MAX_SEED];
} pool;

static int hex_digit(char c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

// Decodes the seed into pool.buf; returns its length in bytes, or 0 if it is
// not an even number of hex digits for MIN_SEED..MAX_SEED bytes.
static int parse_seed(const char *s) {
	int n = 0;
	for (; s[0]; s += 2) {
		int hi = hex_digit(s[0]), lo = hi < 0 ? -1 : hex_digit(s[1]);
		if (lo < 0 || n == MAX_SEED) return 0;
		pool.buf[n++] = (unsigned char)(hi << 4 | lo);
	}
	return n >= MIN_SEED ? n : 0;
}

// Seconds with up to 9 decimals ("31.75") as nanoseconds; returns 0 if malformed.
static int parse_seconds(const char *s, u64 *ns) {
	u64 whole = 0, frac = 0, scale = NS_PER_SEC;
	int digits = 0;
	for (; *s >= '0' && *s <= '9'; s++, digits++) whole = whole * 10 + (u64)(*s - '0');
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9' && scale > 1; s++) frac += (u64)(*s - '0') * (scale /= 10);
	}
	if (*s || digits == 0 || digits > 10) return 0;
	*ns = whole * NS_PER_SEC + frac;
	return 1;
}

static u64 clock_ns(int clock, const char *what) {
	i64 ts[2];
	i64 err = sys(SYS_clock_gettime, clock, (i64)ts, 0, 0);
	if (err) die(what, err);
	return (u64)ts[0] * NS_PER_SEC + (u64)ts[1];
}

void tool_main(char **argv, char **envp) {
	(void)envp;
	if (!argv[1] || !argv[2] || (argv[3] && argv[4])) die("usage: hako-clone-setup UNIX-NANOSECONDS HEX-SEED [RECEIVED-AT]", 0);
	u64 ns, received = 0;
	if (!parse_u(argv[1], &ns)) die("the time must be unix nanoseconds, a decimal integer", 0);
	int seed_bytes = parse_seed(argv[2]);
	if (!seed_bytes) die("the seed must be 32 to 256 bytes as an even number of hex digits", 0);
	if (argv[3] && !parse_seconds(argv[3], &received)) die("RECEIVED-AT must be seconds like /proc/uptime's, e.g. 31.75", 0);

	if (argv[3]) {
		u64 boot = clock_ns(CLOCK_BOOTTIME, "clock_gettime(CLOCK_BOOTTIME)");
		if (boot > received) ns += boot - received;
	}
	i64 ts[2] = {(i64)(ns / NS_PER_SEC), (i64)(ns % NS_PER_SEC)};
	i64 err = sys(SYS_clock_settime, CLOCK_REALTIME, (i64)ts, 0, 0);
	if (err) die("clock_settime(CLOCK_REALTIME)", err);

	i64 fd = sys(SYS_open, (i64)"/dev/urandom", O_WRONLY | O_CLOEXEC, 0, 0);
	if (fd < 0) die("open /dev/urandom", fd);
	pool.entropy_count = seed_bytes * 8;
	pool.buf_size = seed_bytes;
	err = sys(SYS_ioctl, fd, (i64)RNDADDENTROPY, (i64)&pool, 0);
	if (err) die("ioctl RNDADDENTROPY", err);
	err = sys(SYS_ioctl, fd, (i64)RNDRESEEDCRNG, 0, 0);
	if (err) die("ioctl RNDRESEEDCRNG", err);

	put_u(clock_ns(CLOCK_REALTIME, "clock_gettime(CLOCK_REALTIME)") / NS_PER_SEC);
	flush();
	exit_with(0);
}
