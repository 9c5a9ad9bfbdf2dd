/**
 * Turning what the user gave (`--exec` text, lines of a script) into command
 * lines. Pure: no I/O.
 */

/**
 * Splits `--exec` text into command lines at every `;` (or line break)
 * outside double quotes. Inside quotes `\"` and `\\` are escapes (PROTOCOL.md §2), so an
 * escaped quote does not end the quoted part; the escapes themselves are
 * kept, since each piece is sent to the tracker as written. Pieces are
 * trimmed and empty ones dropped.
 */
export function splitExec(text: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === ';' || c === '\n') {
      pieces.push(text.slice(start, i));
      start = i + 1;
    }
  }
  pieces.push(text.slice(start));
  return pieces.map((p) => p.trim()).filter((p) => p.length > 0);
}

/**
 * One line of a script read from stdin: the command to run, or undefined for
 * a blank line or a comment (first non-blank character `#`).
 */
export function scriptCommand(line: string): string | undefined {
  const trimmed = line.trim();
  if (trimmed.length === 0 || trimmed.startsWith('#')) return undefined;
  return trimmed;
}
