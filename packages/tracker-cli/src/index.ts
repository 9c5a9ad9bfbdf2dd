export { runTracker, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './run.js';
export {
  parseTrackerArgs,
  optionNames,
  envName,
  programName,
  describeOptions,
  UsageError,
  ENV_PREFIX,
  LOG_LEVELS,
  LOG_FORMATS,
} from './args.js';
export type { CliConfig, ParsedArgs, LogFormat, LogLevel } from './args.js';
export { createLogger, REDACT_PATHS } from './logger.js';
export type { LoggerSetup } from './logger.js';
