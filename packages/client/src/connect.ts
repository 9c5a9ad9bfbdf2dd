import { formatAddress } from './address.js';
import type { TrackerAddress } from './address.js';
import { errorReason, TrackerConnection } from './connection.js';
import type { ConnectOptions } from './connection.js';
import { UnreachableError } from './errors.js';
import type { ConnectAttempt } from './errors.js';

/**
 * Connects to the first tracker that accepts a TCP connection, trying them
 * in the order given. Rejects with an `UnreachableError` that lists every
 * tracker and why it failed.
 */
export async function connectFirst(
  addresses: readonly TrackerAddress[],
  options: ConnectOptions = {},
): Promise<TrackerConnection> {
  const attempts: ConnectAttempt[] = [];
  for (const address of addresses) {
    try {
      return await TrackerConnection.connect(address, options);
    } catch (error) {
      attempts.push({ address: formatAddress(address), reason: errorReason(error) });
    }
  }
  throw new UnreachableError(attempts);
}
