import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { parseArgs } from './args.js';
import type { CommandTable } from './commands.js';
import { AbandonedError, ClientError, signalExitCode, stopSignalOf } from './errors.js';
import type { ExitCode } from './errors.js';
import { formatClientError, useColor } from './format.js';
import type { View } from './format.js';
import { historyPath } from './history.js';
import { scriptCommand, splitExec } from './input.js';
import { runInteractive } from './interactive.js';
import type { Env } from './options.js';
// peer: the runner with file sharing, and its start/serve/close steps (issue 5)
import { serveAfterScript, startPeer } from './peer/cli-support.js';
import { PeerRunner } from './peer/peer-runner.js';
import { runScript } from './script.js';
import { listenForStopSignals } from './stop.js';
import type { StopListener } from './stop.js';

export interface CliIo {
  argv: readonly string[];
  env: Env;
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable;
  /**
   * The command table to use (the default commands when absent): the place
   * to register client-side commands (`CommandTable.register`).
   */
  commands?: CommandTable;
  /**
   * Aborted (with a signal name such as `SIGTERM` as its reason) to make
   * the client leave as it does on that signal. When absent, the process's
   * SIGTERM, SIGINT and SIGHUP do it while `run` runs.
   */
  stop?: AbortSignal;
}

/** The whole `tracker-client` program, minus `process.exit`. Resolves to the exit status. */
export async function run(io: CliIo): Promise<ExitCode> {
  const parsed = parseArgs(io.argv, io.env);
  if (parsed.kind === 'exit') {
    if (parsed.stdout.length > 0) io.stdout.write(parsed.stdout);
    if (parsed.stderr.length > 0) io.stderr.write(parsed.stderr);
    return parsed.code;
  }
  const { options } = parsed;
  const runner = new PeerRunner(
    {
      trackers: options.trackers,
      requestTimeoutMs: options.requestTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs,
      failoverTimeoutMs: options.failoverTimeoutMs,
      clientOptions: options,
      ...(io.commands !== undefined ? { commands: io.commands } : {}),
    },
    options.peer,
  );
  const interactive = options.exec === undefined && io.stdin.isTTY === true;
  const view: View = {
    mode: options.json ? 'json' : interactive && io.stdout.isTTY === true ? 'pretty' : 'raw',
    color: !options.json && useColor(io.stdout.isTTY, io.env),
  };
  // SIGTERM, SIGINT and SIGHUP make the client leave like `quit` (below, `finally`), not die with its shares still listed.
  let listener: StopListener | undefined;
  let stopKeepAlive: (() => void) | undefined;
  const stop = io.stop ?? (listener = listenForStopSignals()).signal;
  const script = { stdout: io.stdout, stderr: io.stderr, view, keepGoing: options.keepGoing, stop };
  try {
    await startPeer(runner, options.peer.listen, io.stderr); // peer
    await runner.connect(stop);
    const serve = options.peer.serve; // peer: --serve keeps a script's client up
    // peer: ... and its session alive, so that its shares do not expire while it serves.
    if (serve && options.peer.keepaliveMs > 0) stopKeepAlive = runner.keepSessionAlive(options.peer.keepaliveMs);
    if (options.exec !== undefined) return await serveAfterScript(runner, serve, await runScript(runner, splitExec(options.exec), script), io.stderr, stop);
    if (!interactive) return await serveAfterScript(runner, serve, await runScript(runner, readScript(io.stdin), script), io.stderr, stop);
    return await runInteractive(runner, {
      input: io.stdin,
      output: io.stdout,
      terminal: io.stdout.isTTY === true || io.stdin.isTTY === true,
      view,
      historyFile: historyPath(io.env),
      stop,
    });
  } catch (error) {
    // Stopped before the first command (while connecting).
    if (error instanceof AbandonedError && stop.aborted) return signalExitCode(stopSignalOf(stop));
    if (!(error instanceof ClientError)) throw error;
    io.stderr.write(`${formatClientError(error.message)}\n`);
    return error.exitCode;
  } finally {
    // Leaving, however it happens (quit, end of a script, a stop signal): bounded in time.
    stopKeepAlive?.();
    for (const note of await runner.peer.close()) io.stderr.write(`${note}\n`); // peer: stop downloads and serving, withdraw shares
    await runner.close();
    listener?.dispose();
  }
}

/** Commands from a script on stdin: one a line, blank lines and `#` comments skipped. */
export async function* readScript(input: Readable): AsyncGenerator<string> {
  const rl = readline.createInterface({ input, crlfDelay: Infinity, terminal: false });
  try {
    for await (const line of rl) {
      const command = scriptCommand(line);
      if (command !== undefined) yield command;
    }
  } finally {
    rl.close();
  }
}
