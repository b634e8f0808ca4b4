// gRPC status codes as ttRPC carries them (google.rpc.Status.code), and the
// error a failed call or handler produces.

/** The gRPC codes (grpc/codes); the values travel on the wire. */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

const names = new Map<number, string>(Object.entries(Code).map(([name, value]) => [value, name]));

/** "NOT_FOUND" for 5; a peer may send any int32, so unknown codes read "code 99". */
export function codeName(code: number): string {
  return names.get(code) ?? `code ${code}`;
}

/**
 * A call that did not succeed: the peer's status (code and message as sent), or
 * a local outcome: CANCELLED (AbortSignal), DEADLINE_EXCEEDED (timeout),
 * UNAVAILABLE (connection closed), RESOURCE_EXHAUSTED (message over 4 MiB).
 * Handlers throw it to answer with a given code; other exceptions become INTERNAL.
 */
export class TtrpcError extends Error {
  /** The gRPC code; a peer's code is kept as sent, even when it is not one of `Code`. */
  readonly code: number;
  /** The status message alone, as it travels on the wire. */
  readonly statusMessage: string;

  constructor(code: number, statusMessage: string, options?: { cause?: unknown; context?: string }) {
    const prefix = options?.context === undefined ? '' : `${options.context}: `;
    super(`${prefix}${statusMessage} (${codeName(code)})`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TtrpcError';
    this.code = code;
    this.statusMessage = statusMessage;
  }
}
