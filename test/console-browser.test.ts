/**
 * The console page in a real browser against a real local cluster: headless Chromium (playwright-core, the
 * system's Chromium; .ci/run installs it) opens the page with the admin token in the fragment, sees both
 * nodes and a job arrive over the event stream, and deregisters the job with its button.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const TIMEOUT = 30_000;

test('the console shows the cluster live and deregisters a job from the browser', async (t) => {
  t.timeout(120_000);
  if (!existsSync(CHROMIUM)) {
    t.fail(`no Chromium at ${CHROMIUM}: install it (apt-get install chromium; .ci/run does) or set CHROMIUM_PATH`);
    return;
  }

  const cluster = await LocalCluster.start({ dram: 1, ssd: 1 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller);
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('browser-visible', { latencySensitive: true });
  t.teardown(() => job.close().catch(() => {}));
  await job.put('k', 'v');
  const nodeIds = cluster.info.nodes.map((n) => n.id);
  t.is(nodeIds.length, 2);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: TIMEOUT });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(TIMEOUT);
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.accept();
  });

  await page.goto(`${cluster.info.console}/#token=${encodeURIComponent(cluster.adminToken)}`);
  for (const id of nodeIds) await page.locator(`[data-node-id="${id}"]`).waitFor();
  const row = page.locator(`[data-job-id="${job.id}"]`);
  await row.getByText('browser-visible', { exact: true }).waitFor();
  t.false(page.url().includes('#token'), 'the token is taken out of the address bar');
  t.is(await page.inputValue('input[name=admin-token]'), cluster.adminToken);

  // For a screenshot worth looking at: wait until both nodes have reported (bars with figures, not "no report").
  for (const id of nodeIds) await page.locator(`[data-node-id="${id}"]`).filter({ hasNotText: 'no report' }).waitFor();
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}console.png`, fullPage: true });

  await row.locator('button[data-action="deregister"]').click();
  await row.waitFor({ state: 'detached' });
  t.is(dialogs.length, 1, 'deregistering asks first');
  t.regex(await page.locator('[role=status]').innerText(), /deregistered/);

  const response = await fetch(`${cluster.info.console}/api/jobs`);
  t.is(response.status, 200);
  const jobs = (await response.json()) as { id: string }[];
  t.false(jobs.some((j) => j.id === job.id), 'the job is gone from /api/jobs');
  t.deepEqual(pageErrors, []);
});
