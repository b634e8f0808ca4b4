// Shared plumbing for the freestanding guest tools (raw x86-64 system calls,
// no libc): a static glibc binary would add ~700 KB to the initramfs, and
// every initramfs byte is unpacked by emulated kernel code on PVM hosts, in
// every boot.
//
// A tool defines TOOL_NAME (the prefix of its output lines) before including
// this file and provides `void tool_main(char **argv, char **envp)`, which
// must end with exit_with().

typedef unsigned long u64;
typedef long i64;

#define SYS_write 1
#define SYS_exit_group 231

static inline i64 sys(i64 n, i64 a, i64 b, i64 c, i64 d) {
	register i64 r10 __asm__("r10") = d;
	i64 ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
	return ret;
}

static inline i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
	register i64 r10 __asm__("r10") = d;
	register i64 r8 __asm__("r8") = e;
	register i64 r9 __asm__("r9") = f;
	i64 ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

// gcc may turn loops into memset/memcpy calls even when freestanding.
void *memset(void *dst, int c, u64 n) {
	unsigned char *p = dst;
	while (n--) *p++ = (unsigned char)c;
	return dst;
}

void *memcpy(void *dst, const void *src, u64 n) {
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--) *d++ = *s++;
	return dst;
}

__attribute__((noreturn)) static inline void exit_with(int status) {
	sys(SYS_exit_group, status, 0, 0, 0);
	__builtin_unreachable();
}

// One output line, built with put*() and written by flush().
static char line[256];
static u64 len;

static inline void put(const char *s) {
	while (*s && len < sizeof line - 1) line[len++] = *s++;
}

static inline void put_u(u64 v) {
	char d[20];
	int n = 0;
	do d[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
	while (n && len < sizeof line - 1) line[len++] = d[--n];
}

static inline void flush(void) {
	line[len++] = '\n';
	sys(SYS_write, 1, (i64)line, (i64)len, 0);
	len = 0;
}

// Prints "TOOL_NAME: error: <what>[: errno N]" and exits 1; err is a
// system call's negative return value, or 0.
__attribute__((noreturn)) static inline void die(const char *what, i64 err) {
	len = 0;
	put(TOOL_NAME ": error: ");
	put(what);
	if (err) {
		put(": errno ");
		put_u((u64)-err);
	}
	flush();
	exit_with(1);
}

// v / 10^decimals, printed with that many decimals.
static inline void put_fixed(u64 v, int decimals) {
	u64 scale = 1;
	for (int i = 0; i < decimals; i++) scale *= 10;
	put_u(v / scale);
	line[len++] = '.';
	while (scale /= 10) line[len++] = (char)('0' + v / scale % 10);
}

static inline u64 now_ns(void) {
	i64 ts[2];
	i64 err = sys(228 /* clock_gettime */, 1 /* CLOCK_MONOTONIC */, (i64)ts, 0, 0);
	if (err) die("clock_gettime", err);
	return (u64)ts[0] * 1000000000UL + (u64)ts[1];
}

// A non-empty decimal string that fits in 64 bits; returns 0 otherwise.
static inline int parse_u(const char *s, u64 *out) {
	u64 v = 0;
	if (!*s) return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9') return 0;
		u64 digit = (u64)(*s - '0');
		if (v > (~0UL - digit) / 10) return 0;
		v = v * 10 + digit;
	}
	*out = v;
	return 1;
}

// Entry: the kernel leaves argc, argv[], NULL, envp[], NULL on the stack.
__asm__(".globl _start\n_start:\n"
	"	lea 8(%rsp), %rdi\n"       // argv
	"	mov (%rsp), %rax\n"
	"	lea 16(%rsp,%rax,8), %rsi\n" // envp
	"	and $-16, %rsp\n"
	"	call tool_main\n"
	"	hlt\n");
