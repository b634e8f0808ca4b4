// Typed errors for the public API and the CLI. `code` is stable and meant for
// programs; `message` names the bad input and what was expected.

export type HakoErrorCode =
  | 'INVALID_ARGUMENT' // a value from the caller is out of range or malformed
  | 'BAD_KERNEL'       // kernel or initrd file cannot be used
  | 'KVM_UNAVAILABLE'  // /dev/kvm missing, inaccessible or lacking a capability
  | 'NOT_BUILT'        // a build artifact is missing: run the set-up
  | 'BAD_SNAPSHOT'     // a snapshot is damaged, from another format version, or made for another host or CPU template
  | 'VM_FAILED';       // the VMM failed while running a guest

export class HakoError extends Error {
  readonly code: HakoErrorCode;

  constructor(code: HakoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HakoError';
    this.code = code;
  }
}

/** Errors caused by what the user asked for (exit code 2 in the CLI), as opposed to failures while running. */
export function isUsageError(e: unknown): e is HakoError {
  return e instanceof HakoError && e.code !== 'VM_FAILED';
}
