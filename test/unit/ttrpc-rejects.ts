// Shared assertion for ttRPC and agent tests: a call fails with a given code and message.
import * as assert from 'uvu/assert';
import { TtrpcError } from '../../host/ttrpc/status.js';

/** Asserts `promise` rejects with a TtrpcError of `code` whose message matches `message`; returns that error. */
export async function rejects(promise: Promise<unknown>, code: number, message: RegExp): Promise<TtrpcError> {
  try {
    await promise;
  } catch (e) {
    assert.instance(e, TtrpcError);
    assert.is((e as TtrpcError).code, code, (e as Error).message);
    assert.match((e as Error).message, message);
    return e as TtrpcError;
  }
  return assert.unreachable('did not reject') as never;
}
