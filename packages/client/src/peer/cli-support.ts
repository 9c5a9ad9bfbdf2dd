import { formatHostPort, isUnspecifiedHost } from '@tracker-cluster/protocol';
import type { Writable } from 'node:stream';
import { UsageError } from '../errors.js';
import type { ExitCode } from '../errors.js';
import { formatClientError } from '../format.js';
import type { PeerRunner } from './peer-runner.js';
import { waitForStop } from './serve.js';

/**
 * Starts the piece server; a bad or busy `--listen` address is a usage error
 * (exit 2). With `stderr`, warns when the address announced to the other
 * peers is the unspecified one (`unspecifiedListenWarning`).
 */
export async function startPeer(runner: PeerRunner, listen: { host: string; port: number }, stderr?: Writable): Promise<void> {
  try {
    await runner.peer.start();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new UsageError(`cannot serve pieces on --listen ${formatHostPort(listen)} (${code})`);
  }
  const warning = unspecifiedListenWarning(listen, runner.peer.peerAddress);
  if (warning !== undefined) stderr?.write(`${formatClientError(warning)}\n`);
}

/**
 * `--listen 0.0.0.0:0` (or `[::]`) listens on every interface, but the
 * address is also what `upload_file` announces, and no peer can connect to
 * 0.0.0.0: the warning that says so, and what to give instead; undefined for
 * any other address.
 */
export function unspecifiedListenWarning(listen: { host: string; port: number }, announced: string | undefined): string | undefined {
  if (!isUnspecifiedHost(listen.host)) return undefined;
  return (
    `warning: --listen ${formatHostPort(listen)} is announced to the other peers as ${announced ?? formatHostPort(listen)}, ` +
    "an address they cannot connect to; give --listen this machine's address as the other peers reach it " +
    '(e.g. --listen 192.168.1.10:0), or keep the default 127.0.0.1:0 when every peer runs on this machine'
  );
}

/**
 * With `--serve`, a script's client stays up after its last command, serving
 * its shares and finishing its downloads, until `stop` aborts (SIGTERM,
 * SIGINT or SIGHUP); the exit status is still the script's. A script that
 * was itself stopped by a signal does not serve.
 */
export async function serveAfterScript(runner: PeerRunner, serve: boolean, code: ExitCode, stderr: Writable, stop: AbortSignal): Promise<ExitCode> {
  if (!serve || stop.aborted) return code;
  stderr.write(`${formatClientError(`serving pieces on ${runner.peer.peerAddress ?? '?'} until SIGTERM or SIGINT`)}\n`);
  await waitForStop(stop);
  return code;
}
