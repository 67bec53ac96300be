#!/usr/bin/env node
// The CLI is compiled to dist/ by `./scripts/setup` (tsc -b).
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv.slice(2));
