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
