/**
 * What a worker thread's uncaught error becomes on the main thread. An ES
 * module worker's errors reach the parent through structured clone, which
 * keeps an error's own enumerable properties and, for classes it does not
 * know (better-sqlite3's `SqliteError`), nothing else: a plain
 * `{ code: 'SQLITE_CANTOPEN' }` with no message, printed as `[object Object]`.
 */
export function asWorkerError(error: unknown, worker: string): Error {
  if (error instanceof Error) return error;
  const fields = typeof error === 'object' && error !== null ? (error as { code?: unknown; message?: unknown; name?: unknown }) : {};
  const code = typeof fields.code === 'string' ? fields.code : undefined;
  const detail = typeof fields.message === 'string' ? fields.message : code ?? String(error);
  const normal = new Error(`the ${worker} stopped: ${detail}`);
  if (typeof fields.name === 'string') normal.name = fields.name;
  return code === undefined ? normal : Object.assign(normal, { code });
}
