import { pino } from 'pino';
import type { Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogFormat, LogLevel } from './args.js';

export interface LoggerSetup {
  level: LogLevel;
  format: LogFormat;
  /** Program name, logged as `name` on every line. */
  name: string;
  /** Whether stderr is a terminal (decides `auto`, and colours unless `color` says). */
  isTTY?: boolean;
  /** Colours in the pretty format; default `isTTY`. See `logColor`. */
  color?: boolean;
}

/**
 * Whether pretty logs are coloured: `FORCE_COLOR` decides when set (as it
 * does for Node itself: empty, `1`, `2`, `3` or `true` for colours, anything
 * else for none), else whether stderr is a terminal. A program that pipes a
 * tracker's stderr to a terminal of its own (`npm start`, which prefixes
 * each line with the tracker's name) asks for colours this way.
 */
export function logColor(isTTY: boolean, env: Readonly<Record<string, string | undefined>>): boolean {
  const force = env['FORCE_COLOR'];
  if (force === undefined) return isTTY;
  return ['', '1', '2', '3', 'true'].includes(force);
}

/**
 * Paths never to log, whatever a component passes in. The secret and
 * passwords must not reach a log line even by accident.
 */
export const REDACT_PATHS = ['secret', 'password', '*.secret', '*.password', 'options.secret'];

/**
 * A pino logger writing synchronously to stderr (fd 2), so stdout carries
 * nothing but the ready line and nothing is lost on `process.exit`.
 * `pretty` uses pino-pretty as a plain synchronous stream, not a worker
 * transport.
 */
export function createLogger(setup: LoggerSetup): Logger {
  const isTTY = setup.isTTY ?? false;
  const usePretty = setup.format === 'pretty' || (setup.format === 'auto' && isTTY);
  const options = {
    name: setup.name,
    level: setup.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  const stream = usePretty
    ? pretty({
        destination: 2,
        sync: true,
        colorize: setup.color ?? isTTY,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,name',
      })
    : pino.destination({ dest: 2, sync: true });
  return pino(options, stream);
}
