import { formatHostPort } from '@tracker-cluster/protocol';
import type { Writable } from 'node:stream';
import { UsageError } from '../errors.js';
import type { ExitCode } from '../errors.js';
import { formatClientError } from '../format.js';
import type { PeerRunner } from './peer-runner.js';
import { waitForStop } from './serve.js';

/** Starts the piece server; a bad or busy `--listen` address is a usage error (exit 2). */
export async function startPeer(runner: PeerRunner, listen: { host: string; port: number }): Promise<void> {
  try {
    await runner.peer.start();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new UsageError(`cannot serve pieces on --listen ${formatHostPort(listen)} (${code})`);
  }
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
