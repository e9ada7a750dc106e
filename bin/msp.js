#!/usr/bin/env node
// The `msp` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (run automatically by `npm ci` / `npm install` through the prepare script).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/native-models/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('msp: the CLI is not built yet; run "npm run build" in the MSP Studio folder\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
