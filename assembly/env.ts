// Functions the host supplies to the device models (Wasm import module "env",
// provided by host/wasm/devices.ts). The AS runtime also imports env.abort.

/** Sets interrupt line `gsi` of the in-kernel irqchip to `level` (1 asserted, 0 deasserted). Called only on changes. */
@external("env", "irqLine")
export declare function irqLine(gsi: u32, level: u32): void;

/** One byte the guest transmitted on the serial console. */
@external("env", "consoleWrite")
export declare function consoleWrite(byte: u32): void;

/** The guest pulsed the CPU reset line (i8042). May be called more than once per reset. */
@external("env", "resetRequest")
export declare function resetRequest(): void;

/** Host wall-clock time as UNIX seconds (fractional), read by the RTC. */
@external("env", "wallClockSeconds")
export declare function wallClockSeconds(): f64;

/** The guest wrote `code` to the exit port (our guest kernel: 0 = poweroff, 1 = panic). */
@external("env", "guestExit")
export declare function guestExit(code: u32): void;

/** Pulses interrupt line `gsi` (an edge: the host writes the irqfd bound to it). */
@external("env", "irqPulse")
export declare function irqPulse(gsi: u32): void;

/** Fills guest RAM [gpa, gpa + len) with random bytes; the range is in guest RAM (checked by the caller). */
@external("env", "fillRandom")
export declare function fillRandom(gpa: u64, len: u32): void;

// virtio-vsock host side (host/vsock/): one host Unix socket per connection,
// named by a small `handle` the host chose. An iov is `count` 16-byte entries
// {u64 addr, u64 len} at Wasm address `iov`, each range guest RAM (checked)
// or the device's own buffers. Results are byte counts or -errno.

/** readv from the socket: > 0 bytes read, 0 end of file, -11 (EAGAIN) nothing now, other -errno an error. */
@external("env", "vsockRead")
export declare function vsockRead(handle: u32, iov: usize, count: u32): i32;

/** writev to the socket: >= 0 bytes written (may be partial), -11 (EAGAIN) no room now, other -errno an error. */
@external("env", "vsockWrite")
export declare function vsockWrite(handle: u32, iov: usize, count: u32): i32;

/** Which readiness the host should report through vsockReady from now on (initially none). */
@external("env", "vsockWatch")
export declare function vsockWatch(handle: u32, readable: bool, writable: bool): void;

/** The guest asks to connect to host port `hostPort`: a new handle >= 0 for the connected socket, or -errno. */
@external("env", "vsockConnect")
export declare function vsockConnect(hostPort: u32): i32;

/** The guest accepted the host-initiated connection `handle` (vsockHostConnect): the host answers "OK <port>". */
@external("env", "vsockConnected")
export declare function vsockConnected(handle: u32): void;

/** The guest shut its side down (flags: 1 RCV, 2 SEND); on SEND the host shuts the socket for writing. */
@external("env", "vsockShutdown")
export declare function vsockShutdown(handle: u32, flags: u32): void;

/** The connection is over: the host closes the socket and forgets `handle`; the device never uses it again. */
@external("env", "vsockClose")
export declare function vsockClose(handle: u32): void;
