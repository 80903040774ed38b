/**
 * The console page's routes, open to anyone (they hold no data; the page reads the cluster through `/api` with a
 * token): the page at `/`, its script, style and icon (`/assets/console.js`, `/assets/console.css`,
 * `/favicon.ico`), served with @fastify/static from what `npm run build` made of console-web/ (the TypeScript
 * bundled by esbuild, the HTML, CSS and icon copied); and Chart.js's browser build from node_modules.
 *
 * The page and its files are sent with no cache headers, as the page was when its script was inline: a page and
 * a script from two builds never meet. Chart.js, which changes only with its package, is cached for a day.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, RouteShorthandOptions } from 'fastify';

/**
 * The built page: dist/controller/console-web beside this module once compiled; run from source (tsx: the
 * tests, `LocalCluster` in them) the build's output in dist/ all the same, since only the build bundles it.
 */
const HERE = dirname(fileURLToPath(import.meta.url));
export const PAGE_ROOT = import.meta.url.endsWith('.ts')
  ? join(HERE, '..', 'dist', 'controller', 'console-web')
  : join(HERE, 'console-web');

/** URL → file in PAGE_ROOT. The icon is an SVG, also at /favicon.ico where browsers ask without a link. */
const FILES: Record<string, string> = {
  '/': 'index.html',
  '/favicon.ico': 'favicon.svg',
  '/assets/console.js': 'console.js',
  '/assets/console.js.map': 'console.js.map',
  '/assets/console.css': 'console.css',
};

/** Adds the page's routes to the console, each with `route` (its access: open). */
export function pageRoutes(app: FastifyInstance, route: RouteShorthandOptions): void {
  // serve: false: only the routes below, so a path the page does not have gets the console's own 404. Loaded
  // when a console is built, not with the controller's module: every role's process (`satchel storage-node`,
  // the CLI's short commands) imports the controller, and only the controller's serves pages.
  void app.register(import('@fastify/static'), { root: PAGE_ROOT, serve: false, cacheControl: false, etag: false, lastModified: false });
  const built = existsSync(join(PAGE_ROOT, 'index.html'));
  for (const [url, file] of Object.entries(FILES)) {
    app.get(url, route, async (_request, reply) => {
      if (!built)
        return reply.code(503).send({ code: 'UNAVAILABLE', message: `the console page is not built (no ${PAGE_ROOT}): run npm run build` });
      return reply.sendFile(file);
    });
  }
  app.get('/assets/chart.umd.min.js', route, async (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'max-age=86400')
      .send(await chartJs()),
  );
}

let chartSource: Promise<string> | undefined;

/** Chart.js's browser build, read once. Its package `exports` hide the file, so it is found next to the entry. */
function chartJs(): Promise<string> {
  chartSource ??= readFile(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  return chartSource;
}
