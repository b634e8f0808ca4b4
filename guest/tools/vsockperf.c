// hako-vsockperf MODE PORT [ARGS]: vsock from inside the guest, for the vsock
// VM tests and `npm run bench -- vsock`. Stream sockets only; the host is CID 2.
//   listen PORT           accept connections on vsock port PORT (any CID), one
//                         at a time, and echo each until the peer closes; prints
//                         "hako-vsockperf: listening port=PORT" once listening
//   echo PORT             connect to the host's PORT, echo until EOF
//   send PORT BYTES       connect, write BYTES bytes, shut down writing, wait
//                         for the host to close (so the time covers delivery)
//   recv PORT             connect, read until EOF
//   rtt PORT COUNT SIZE   connect, COUNT times: write SIZE bytes, read SIZE back
// Result lines (MBps is 10^6 bytes/s, times in microseconds):
//   hako-vsockperf: echo bytes=N secs=S.SSSSSS
//   hako-vsockperf: send bytes=N secs=S.SSSSSS MBps=M.MMM
//   hako-vsockperf: recv bytes=N secs=S.SSSSSS MBps=M.MMM
//   hako-vsockperf: rtt count=N size=S secs=S.SSSSSS avg_us=A.A min_us=M.M max_us=X.X
//   hako-vsockperf: done
// or "hako-vsockperf: error: <what>" and exit status 1. send and recv data
// bytes are (offset * 131 + 7) mod 256, so either side can check them; recv
// checks. Freestanding: see sys.h.

#define TOOL_NAME "hako-vsockperf"
#include "sys.h"

#define SYS_read 0
#define SYS_close 3
#define SYS_socket 41
#define SYS_connect 42
#define SYS_accept4 288
#define SYS_shutdown 48
#define SYS_bind 49
#define SYS_listen 50
#define AF_VSOCK 40
#define SOCK_STREAM 1
#define SOCK_CLOEXEC 02000000
#define SHUT_WR 1
#define EINTR 4
#define VMADDR_CID_ANY 0xffffffffU
#define VMADDR_CID_HOST 2U

#define BUF_SIZE (64UL << 10)
#define MAX_PORT 0xffffffffUL
#define MAX_BYTES (1UL << 40) // keeps bytes * 10^3 (the rate) within 64 bits

struct sockaddr_vm {
	unsigned short family;
	unsigned short reserved;
	unsigned int port;
	unsigned int cid;
	unsigned char flags;
	unsigned char zero[3];
};

static unsigned char buf[BUF_SIZE];

static void put_field(const char *name, u64 v) {
	put(" ");
	put(name);
	put("=");
	put_u(v);
}

static void put_secs(u64 ns) {
	put(" secs=");
	put_fixed(ns / 1000, 6);
}

// bytes per microsecond = 10^6 bytes per second.
static void put_rate(u64 bytes, u64 ns) {
	u64 us = ns / 1000 ? ns / 1000 : 1;
	put(" MBps=");
	put_fixed(bytes * 1000 / us, 3);
}

static unsigned char pattern(u64 offset) { return (unsigned char)(offset * 131 + 7); }

static i64 vsock_socket(void) {
	i64 fd = sys(SYS_socket, AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0, 0);
	if (fd < 0) die("socket(AF_VSOCK)", fd);
	return fd;
}

static i64 connect_host(u64 port) {
	i64 fd = vsock_socket();
	struct sockaddr_vm addr = {.family = AF_VSOCK, .port = (unsigned int)port, .cid = VMADDR_CID_HOST};
	i64 err = sys(SYS_connect, fd, (i64)&addr, sizeof addr, 0);
	if (err) die("connect to the host (CID 2)", err);
	return fd;
}

// read(); a signal interrupting it (none are expected) is retried.
static i64 read_some(i64 fd, unsigned char *p, u64 n) {
	i64 r;
	do r = sys(SYS_read, fd, (i64)p, (i64)n, 0); while (r == -EINTR);
	if (r < 0) die("read", r);
	return r;
}

static void write_all(i64 fd, const unsigned char *p, u64 n) {
	while (n) {
		i64 w = sys(SYS_write, fd, (i64)p, (i64)n, 0);
		if (w == -EINTR) continue;
		if (w <= 0) die("write", w);
		p += w;
		n -= (u64)w;
	}
}

static void read_exactly(i64 fd, unsigned char *p, u64 n) {
	while (n) {
		i64 r = read_some(fd, p, n);
		if (r == 0) die("the peer closed the connection early", 0);
		p += r;
		n -= (u64)r;
	}
}

// Echoes until EOF; returns the bytes echoed.
static u64 echo(i64 fd) {
	u64 total = 0;
	for (i64 r; (r = read_some(fd, buf, BUF_SIZE)) > 0; total += (u64)r) write_all(fd, buf, (u64)r);
	return total;
}

static void listen_mode(u64 port) {
	i64 fd = vsock_socket();
	struct sockaddr_vm addr = {.family = AF_VSOCK, .port = (unsigned int)port, .cid = VMADDR_CID_ANY};
	i64 err = sys(SYS_bind, fd, (i64)&addr, sizeof addr, 0);
	if (err) die("bind", err);
	err = sys(SYS_listen, fd, 16, 0, 0);
	if (err) die("listen", err);
	put("hako-vsockperf: listening");
	put_field("port", port);
	flush();
	for (;;) {
		i64 conn = sys(SYS_accept4, fd, 0, 0, SOCK_CLOEXEC);
		if (conn == -EINTR) continue;
		if (conn < 0) die("accept", conn);
		echo(conn);
		sys(SYS_close, conn, 0, 0, 0);
	}
}

static void send_mode(i64 fd, u64 bytes) {
	u64 start = now_ns();
	for (u64 off = 0; off < bytes;) {
		u64 n = bytes - off < BUF_SIZE ? bytes - off : BUF_SIZE;
		for (u64 i = 0; i < n; i++) buf[i] = pattern(off + i);
		write_all(fd, buf, n);
		off += n;
	}
	i64 err = sys(SYS_shutdown, fd, SHUT_WR, 0, 0);
	if (err) die("shutdown(SHUT_WR)", err);
	while (read_some(fd, buf, BUF_SIZE) > 0) {} // until the host has read everything and closes
	u64 ns = now_ns() - start;
	put("hako-vsockperf: send");
	put_field("bytes", bytes);
	put_secs(ns);
	put_rate(bytes, ns);
	flush();
}

static void recv_mode(i64 fd) {
	u64 total = 0, start = now_ns();
	for (i64 r; (r = read_some(fd, buf, BUF_SIZE)) > 0; total += (u64)r) {
		for (i64 i = 0; i < r; i++) {
			if (buf[i] != pattern(total + (u64)i)) die("recv: a received byte differs from the pattern", 0);
		}
	}
	u64 ns = now_ns() - start;
	put("hako-vsockperf: recv");
	put_field("bytes", total);
	put_secs(ns);
	put_rate(total, ns);
	flush();
}

static void rtt_mode(i64 fd, u64 count, u64 size) {
	u64 min = ~0UL, max = 0, start = now_ns();
	for (u64 i = 0; i < size; i++) buf[i] = pattern(i);
	for (u64 round = 0; round < count; round++) {
		u64 t = now_ns();
		write_all(fd, buf, size);
		read_exactly(fd, buf, size);
		t = now_ns() - t;
		if (t < min) min = t;
		if (t > max) max = t;
	}
	u64 ns = now_ns() - start;
	for (u64 i = 0; i < size; i++) {
		if (buf[i] != pattern(i)) die("rtt: the echoed bytes differ from those sent", 0);
	}
	put("hako-vsockperf: rtt");
	put_field("count", count);
	put_field("size", size);
	put_secs(ns);
	put(" avg_us=");
	put_fixed(ns / count / 100, 1);
	put(" min_us=");
	put_fixed(min / 100, 1);
	put(" max_us=");
	put_fixed(max / 100, 1);
	flush();
}

static int is(const char *a, const char *b) {
	while (*a && *a == *b) a++, b++;
	return *a == *b;
}

// argv[i] as a number in [lo, hi], or die naming the argument.
static u64 number(char **argv, int i, const char *name, u64 lo, u64 hi) {
	u64 v;
	if (!argv[i] || !parse_u(argv[i], &v) || v < lo || v > hi) {
		len = 0;
		put(TOOL_NAME ": error: ");
		put(name);
		put(" must be a number from ");
		put_u(lo);
		put(" to ");
		put_u(hi);
		flush();
		exit_with(1);
	}
	return v;
}

#define USAGE "usage: hako-vsockperf listen PORT | echo PORT | send PORT BYTES | recv PORT | rtt PORT COUNT SIZE"

static const struct {
	const char *name;
	int args; // after MODE, PORT included
} modes[] = {{"listen", 1}, {"echo", 1}, {"send", 2}, {"recv", 1}, {"rtt", 3}};

void tool_main(char **argv, char **envp) {
	(void)envp;
	int argc = 0;
	while (argv[argc]) argc++;
	u64 m = 0;
	while (m < sizeof modes / sizeof modes[0] && !(argc > 1 && is(argv[1], modes[m].name))) m++;
	if (m == sizeof modes / sizeof modes[0] || argc != 2 + modes[m].args) die(USAGE, 0);
	const char *mode = argv[1];
	u64 port = number(argv, 2, "PORT", 0, MAX_PORT);

	if (is(mode, "listen")) {
		listen_mode(port);
	} else if (is(mode, "echo")) {
		u64 start = now_ns();
		u64 bytes = echo(connect_host(port));
		put("hako-vsockperf: echo");
		put_field("bytes", bytes);
		put_secs(now_ns() - start);
		flush();
	} else if (is(mode, "send")) {
		send_mode(connect_host(port), number(argv, 3, "BYTES", 0, MAX_BYTES));
	} else if (is(mode, "recv")) {
		recv_mode(connect_host(port));
	} else {
		u64 count = number(argv, 3, "COUNT", 1, 1000000000UL);
		rtt_mode(connect_host(port), count, number(argv, 4, "SIZE", 1, BUF_SIZE));
	}
	put("hako-vsockperf: done");
	flush();
	exit_with(0);
}
