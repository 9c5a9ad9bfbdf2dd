/** The replica tracker's role; the program itself is `bin/tracker-replica.js` → `dist/main.js`. */
export const ROLE = 'replica' as const;
