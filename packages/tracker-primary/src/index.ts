/** The primary tracker's role; the program itself is `bin/tracker-primary.js` → `dist/main.js`. */
export const ROLE = 'primary' as const;
