// Content digests of OCI images ("sha256:<64 hex>", "sha512:<128 hex>"): the
// only names an image's blobs have, so every one is checked before use.
import { createHash, type Hash } from 'node:crypto';
import { HakoError } from '../errors.js';

const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

export interface Digest {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

/** Parses `value` ("algo:hex"); `what` names where it came from in the message. */
export function parseDigest(value: unknown, what: string): Digest {
  const m = typeof value === 'string' ? /^(sha256|sha512):([0-9a-f]+)$/.exec(value) : null;
  if (!m || m[2].length !== HEX_LENGTH[m[1]]) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: digest ${JSON.stringify(value)} is not sha256:<64 hex> or sha512:<128 hex>`);
  }
  return { algorithm: m[1] as Digest['algorithm'], hex: m[2] };
}

export const formatDigest = (d: Digest): string => `${d.algorithm}:${d.hex}`;

export const digestHash = (d: Digest): Hash => createHash(d.algorithm);

/** Throws naming `what` unless `actualHex` (a finished hash of the content) is `expected`. */
export function checkDigest(expected: Digest, actualHex: string, what: string): void {
  if (actualHex !== expected.hex) {
    throw new HakoError('INVALID_ARGUMENT',
      `${what}: content has digest ${expected.algorithm}:${actualHex}, expected ${formatDigest(expected)} (damaged or tampered with)`);
  }
}

/** Checks `bytes` against `expected`. */
export function verifyBytes(bytes: Buffer, expected: Digest, what: string): void {
  checkDigest(expected, digestHash(expected).update(bytes).digest('hex'), what);
}
