/**
 * @tracker-cluster/client — the tracker client as a library: the connection,
 * the command table, session state, and the script and prompt runners that
 * the `tracker-client` bin is made of.
 */
export * from './errors.js';
export * from './types.js';
export * from './address.js';
export * from './input.js';
export * from './commands.js';
export * from './state.js';
export * from './format.js';
export * from './connection.js';
export * from './connect.js';
export * from './options.js';
export * from './args.js';
export * from './runner.js';
export * from './request-id.js';
export * from './backoff.js';
export * from './completion.js';
export * from './history.js';
export * from './script.js';
export * from './interactive.js';
export { run, readScript } from './cli.js';
// peer: file sharing (issue 5)
export * from './peer/index.js';
export type { CliIo } from './cli.js';
