#!/usr/bin/env node
// The `tracker-client` command. The program itself is compiled TypeScript in
// ../dist (built by `tsc -b` at the repository root, which `npm ci` runs).
import '../dist/main.js';
