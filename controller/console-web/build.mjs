// Builds the console page into dist/controller/console-web/ (npm run build, after tsc): the TypeScript bundled by
// esbuild into one script, console.js (Chart.js stays out: the page loads it from /assets/chart.umd.min.js), and
// the HTML, CSS and icon copied beside it. controller/console-page.ts serves that folder. Type-checking is tsc's
// (`tsc --noEmit -p controller/console-web`); esbuild only strips the types.

import { cpSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const out = here('../../dist/controller/console-web/');

mkdirSync(out, { recursive: true });
await build({
  entryPoints: [here('main.ts')],
  outfile: `${out}console.js`,
  bundle: true,
  format: 'iife',
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
for (const file of ['index.html', 'console.css', 'favicon.svg']) cpSync(here(file), `${out}${file}`);
