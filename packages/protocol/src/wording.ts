/**
 * A count and its noun, `1 file` or `2 files`, for messages whose count
 * can be 1 (a limit set to 1, a file of one piece): `${n} files` would say
 * "1 files". Nouns whose plural is not the singular plus `s` pass it.
 */
export function counted(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
