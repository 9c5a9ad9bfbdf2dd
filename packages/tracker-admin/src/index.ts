export { runAdmin, PROGRAM, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './cli.js';
export { backupTracker, restoreBackup, readBackup, inspectPair, AdminError, MANIFEST } from './backup.js';
export type { BackupManifest } from './backup.js';
export { COMMANDS } from './commands/index.js';
export type { AdminCommand, AdminIo } from './commands/command.js';
export { UsageError } from './commands/command.js';
