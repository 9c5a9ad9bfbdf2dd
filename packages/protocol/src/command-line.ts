import { TrackerError } from './errors.js';

/**
 * The command-line syntax of PROTOCOL.md §2, shared by requests and by the
 * rows of list answers: words separated by spaces or tabs; a word may be
 * written in double quotes to hold spaces, and inside quotes `\"` and `\\`
 * are the only escapes (any other backslash is kept as written). Quoted and
 * bare parts next to each other form one word (`key="a b"` is `key=a b`).
 */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line.charCodeAt(i);
    if (c === 0x20 || c === 0x09) {
      if (inWord) {
        words.push(word);
        word = '';
        inWord = false;
      }
      i++;
    } else if (c === 0x22) {
      inWord = true;
      i++;
      let closed = false;
      while (i < n) {
        const q = line.charCodeAt(i);
        if (q === 0x22) {
          closed = true;
          i++;
          break;
        }
        if (q === 0x5c && i + 1 < n) {
          const next = line.charCodeAt(i + 1);
          if (next === 0x22 || next === 0x5c) {
            word += line[i + 1];
            i += 2;
            continue;
          }
        }
        word += line[i];
        i++;
      }
      if (!closed) throw new TrackerError('BAD_REQUEST', 'unterminated quote');
    } else {
      // Bare run up to the next separator or quote.
      let j = i + 1;
      while (j < n) {
        const d = line.charCodeAt(j);
        if (d === 0x20 || d === 0x09 || d === 0x22) break;
        j++;
      }
      word += line.slice(i, j);
      inWord = true;
      i = j;
    }
  }
  if (inWord) words.push(word);
  return words;
}

const NEEDS_QUOTES = /[ \t"]/;

/** Writes one word so that `tokenize` reads it back unchanged. */
export function quote(word: string): string {
  if (word.length > 0 && !NEEDS_QUOTES.test(word)) return word;
  return `"${word.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
}

/** Joins words into one command line, quoting where needed. */
export function formatCommand(words: readonly string[]): string {
  return words.map(quote).join(' ');
}

/** One row of a list answer: `<name> key=value key=value ...`. */
export function formatRow(name: string, fields: Readonly<Record<string, string | number | bigint>> = {}): string {
  let row = quote(name);
  for (const [key, value] of Object.entries(fields)) {
    row += ` ${key}=${quote(String(value))}`;
  }
  return row;
}

export interface Row {
  name: string;
  fields: Record<string, string>;
}

/** Parses a row written by `formatRow`. Words without `=` after the name are kept under their position. */
export function parseRow(line: string): Row {
  const words = tokenize(line);
  const name = words[0] ?? '';
  const fields: Record<string, string> = {};
  for (let k = 1; k < words.length; k++) {
    const word = words[k] as string;
    const eq = word.indexOf('=');
    if (eq > 0) fields[word.slice(0, eq)] = word.slice(eq + 1);
    else fields[String(k)] = word;
  }
  return { name, fields };
}
