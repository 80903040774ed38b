/**
 * The console page in a real browser against a real local cluster: headless Chromium (playwright-core, the
 * system's Chromium; .ci/run installs it). Without a token the page shows nothing but a form asking for one,
 * and asks again when the console refuses it; opened with the viewer token in the fragment it keeps the token
 * for the tab, takes it out of the address bar and sees both nodes and a job arrive over the event stream; its
 * deregister button needs the admin token.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const TIMEOUT = 30_000;

let cluster: LocalCluster;
let browser: Browser;

test.before(async () => {
  if (!existsSync(CHROMIUM)) return;
  cluster = await LocalCluster.start({ dram: 1, ssd: 1 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: TIMEOUT });
});

test.after.always(async () => {
  await browser?.close();
  await cluster?.stop();
});

/** A fresh page (its own context: its own sessionStorage) that records script errors and accepts dialogs. */
async function newPage(t: import('ava').ExecutionContext) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.accept();
  });
  return { page, errors, dialogs };
}

function chromiumThere(t: import('ava').ExecutionContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  t.fail(`no Chromium at ${CHROMIUM}: install it (apt-get install chromium; .ci/run does) or set CHROMIUM_PATH`);
  return false;
}

/** What the page keeps in sessionStorage under `key` (the expression runs in the page). */
const stored = (page: Page, key: string) => page.evaluate<string | null>(`sessionStorage.getItem(${JSON.stringify(key)})`);
const sessionToken = (page: Page) => stored(page, 'satchel.token');

test('without a token the page asks for one, shows nothing, and asks again when the console refuses it', async (t) => {
  t.timeout(120_000);
  if (!chromiumThere(t)) return;
  const { page, errors } = await newPage(t);
  const streams: number[] = [];
  page.on('response', (response) => {
    if (response.url().endsWith('/api/stream')) streams.push(response.status());
  });

  await page.goto(cluster.info.console);
  const form = page.locator('form#login');
  await form.waitFor({ state: 'visible' });
  t.regex(await page.locator('#login-reason').innerText(), /needs a token/);
  t.false(await page.locator('#nodes').isVisible(), 'no cluster shown');
  t.deepEqual(streams, [], 'no stream opened without a token');
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}console-token.png` });

  await form.locator('input[name=token]').fill('v1.@viewer.not-the-real-one');
  await form.locator('button[type=submit]').click();
  await page.locator('#login-reason').getByText(/refused that token \(401\)/).waitFor();
  t.true(await form.isVisible(), 'the form again');
  t.deepEqual(streams, [401]);
  t.is(await sessionToken(page), null, 'a refused token is not kept');

  await form.locator('input[name=token]').fill(cluster.viewerToken);
  await form.locator('button[type=submit]').click();
  for (const node of cluster.info.nodes) await page.locator(`[data-node-id="${node.id}"]`).waitFor();
  t.false(await form.isVisible(), 'the form gone');
  t.is(await sessionToken(page), cluster.viewerToken);
  t.deepEqual(errors, []);
});

test('opened with #token=<viewer token>: the cluster live, the token out of the address bar; deregistering needs the admin token', async (t) => {
  t.timeout(120_000);
  if (!chromiumThere(t)) return;
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('browser-visible', { latencySensitive: true });
  t.teardown(() => job.close().catch(() => {}));
  await job.put('k', 'v');
  const nodeIds = cluster.info.nodes.map((n) => n.id);
  t.is(nodeIds.length, 2);
  const { page, errors, dialogs } = await newPage(t);

  await page.goto(`${cluster.info.console}/#token=${encodeURIComponent(cluster.viewerToken)}`);
  for (const id of nodeIds) await page.locator(`[data-node-id="${id}"]`).waitFor();
  const row = page.locator(`[data-job-id="${job.id}"]`);
  await row.getByText('browser-visible', { exact: true }).waitFor();
  t.false(page.url().includes('token'), 'the token is taken out of the address bar');
  t.is(await sessionToken(page), cluster.viewerToken, 'kept for the tab');
  t.is(await page.inputValue('input[name=admin-token]'), '', 'the viewer token is not an admin token');
  t.false(await page.locator('form#login').isVisible());

  // Reloaded, the tab still has its token.
  await page.reload();
  await row.getByText('browser-visible', { exact: true }).waitFor();

  // For a screenshot worth looking at: wait until both nodes have reported (bars with figures, not "no report").
  for (const id of nodeIds) await page.locator(`[data-node-id="${id}"]`).filter({ hasNotText: 'no report' }).waitFor();
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}console.png`, fullPage: true });

  // The buttons need the admin token: without it, nothing happens but a message.
  await row.locator('button[data-action="deregister"]').click();
  await page.locator('[role=status]').getByText(/set the admin token first/).waitFor();
  t.true(await row.isVisible(), 'the job is still there');
  await page.fill('input[name=admin-token]', cluster.adminToken);
  await row.locator('button[data-action="deregister"]').click();
  await row.waitFor({ state: 'detached' });
  t.is(dialogs.length, 2, 'deregistering asks first, each time');
  t.regex(await page.locator('[role=status]').innerText(), /deregistered/);
  t.is(await stored(page, 'satchel.adminToken'), cluster.adminToken);
  t.is(await page.evaluate<number>('localStorage.length'), 0, 'no token outlives the tab');

  const response = await fetch(`${cluster.info.console}/api/jobs`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } });
  t.is(response.status, 200);
  const jobs = (await response.json()) as { id: string }[];
  t.false(jobs.some((j) => j.id === job.id), 'the job is gone from /api/jobs');
  t.deepEqual(errors, []);
});
