export { runTracker, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './run.js';
export {
  parseTrackerArgs,
  optionNames,
  optionRows,
  optionsMarkdown,
  DEFAULT_ADMIN_HOST,
  envName,
  programName,
  describeOptions,
  UsageError,
  ENV_PREFIX,
  LOG_LEVELS,
  LOG_FORMATS,
} from './args.js';
export type { CliConfig, ParsedArgs, LogFormat, LogLevel, OptionRow } from './args.js';
export { createTrackerMetrics, startAdminServer } from './admin.js';
export type { AdminServer, MetricsSource, TrackerMetrics } from './admin.js';
export { createLogger, logColor, REDACT_PATHS } from './logger.js';
export type { LoggerSetup } from './logger.js';
