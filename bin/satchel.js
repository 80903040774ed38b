#!/usr/bin/env node
// The `satchel` command: runs the compiled CLI (npm ci / npm install build dist/ through `prepare`). The one
// composition root: `bench` goes to perf's entry, every other command to deploy's.
if (process.argv[2] === 'bench') await import('../dist/perf/main.js');
else await import('../dist/deploy/cli.js');
