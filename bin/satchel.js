#!/usr/bin/env node
// The `satchel` command: runs the compiled CLI (npm ci / npm install build dist/ through `prepare`).
import '../dist/deploy/cli.js';
