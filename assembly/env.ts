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
