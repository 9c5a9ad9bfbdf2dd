/**
 * Validation of the names and values of PROTOCOL.md §2, shared by the
 * trackers (which enforce it) and the client (which checks early).
 */
const NAME = /^[A-Za-z0-9_.-]{1,32}$/;

/** Users and groups: 1–32 characters of `A–Z a–z 0–9 _ . -`. */
export function isValidName(name: string): boolean {
  return NAME.test(name);
}

/** Passwords: 1–256 characters. */
export function isValidPassword(password: string): boolean {
  const length = [...password].length;
  return length >= 1 && length <= 256;
}

// C0, DEL and C1 control characters, and lone surrogates (not encodable as UTF-8).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u;

/** File names: 1–255 bytes of UTF-8, no `/`, no NUL, no control characters. */
export function isValidFileName(name: string): boolean {
  const bytes = Buffer.byteLength(name, 'utf8');
  return bytes >= 1 && bytes <= 255 && !name.includes('/') && !CONTROL.test(name);
}
