import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BASE_URL, KEY, SHOTS, close, countTraffic, createTask, launch, openPage, report, rowFor, unique } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('sign in with the form, then a task created through the API appears without reload', async () => {
  const session = await openPage(browser, { signedIn: false });
  const { page } = session;
  await page.goto(`${BASE_URL}/`);
  await page.getByLabel('API key').fill(KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Bulk tasks' }).waitFor();
  assert.equal(page.url().includes(KEY), false, 'the key must never be in a URL');
  // The socket must be up before the task is created, or its event is missed.
  await page.locator('.live-open').waitFor();

  const description = unique('Appears live');
  const id = await createTask({ description, items: 4 });
  await rowFor(page, id).waitFor({ timeout: 10_000 });
  await assert.doesNotReject(rowFor(page, id).getByText(description).waitFor());
  await close(session);
});

test('reporting half the items moves the progress bar to 50 without reload', async () => {
  const session = await openPage(browser);
  const { page } = session;
  const id = await createTask({ description: unique('Half done'), items: 10 });
  await page.goto(`${BASE_URL}/`);
  const bar = rowFor(page, id).getByRole('progressbar');
  await bar.waitFor();
  assert.equal(await bar.getAttribute('aria-valuenow'), '0');
  assert.equal(await bar.getAttribute('aria-valuemin'), '0');
  assert.equal(await bar.getAttribute('aria-valuemax'), '100');
  assert.match((await bar.getAttribute('aria-label')) ?? '', /Half done/);
  await page.locator('.live-open').waitFor();

  await report(id, [0, 1, 2, 3, 4].map((index) => ({ index, outcome: 'SUCCEEDED' })));
  await page.waitForFunction(
    (taskId) =>
      document.querySelector(`li[data-task-id="${taskId}"] [role="progressbar"]`)?.getAttribute('aria-valuenow') === '50',
    id,
    { timeout: 10_000 },
  );
  // Keyboard reachable: the bar takes focus.
  await bar.focus();
  assert.equal(await bar.evaluate((el) => el === document.activeElement), true);
  await close(session);
});

test('the list view costs one GraphQL request and one subscription', async () => {
  // A few tasks in several states, for the screenshots.
  const running = await createTask({ type: 'sims.bulk_provision', description: 'Provision SIMs for ACME', items: 40 });
  await report(running, [
    ...Array.from({ length: 22 }, (_, index) => ({ index, outcome: 'SUCCEEDED' })),
    { index: 22, outcome: 'FAILED', code: 'HLR_TIMEOUT' },
    { index: 23, outcome: 'FAILED', code: 'HLR_TIMEOUT' },
    { index: 24, outcome: 'SKIPPED' },
  ]);
  const done = await createTask({ type: 'ledger.export', description: 'Export the November ledger', items: 12 });
  await report(done, Array.from({ length: 12 }, (_, index) => ({ index, outcome: 'SUCCEEDED' })));
  await createTask({ type: 'contacts.import', description: 'Import 50k CRM contacts', items: 25 });

  const session = await openPage(browser);
  const { page } = session;
  const traffic = countTraffic(page);
  await page.goto(`${BASE_URL}/`);
  await rowFor(page, running).waitFor();
  await page.locator('.live-open').waitFor();
  await page.waitForTimeout(1500); // anything late would show up here
  assert.equal(traffic.posts.length, 1, `GraphQL POSTs: ${JSON.stringify(traffic.posts.map((p) => p.query?.slice(0, 40)))}`);
  assert.match(traffic.posts[0].query, /bulkTasks/);
  assert.match(traffic.posts[0].query, /bulkTaskStats/);
  assert.equal(traffic.subscribes.length, 1);
  assert.match(traffic.subscribes[0].query, /bulkTasksUpdated/);
  assert.deepEqual(traffic.inits, [{ Authorization: `Bearer ${KEY}` }]);
  assert.equal(traffic.posts.every((p) => !JSON.stringify(p).includes(KEY)), true);

  await page.screenshot({ path: `${SHOTS}list-1280.png` });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${SHOTS}list-390.png` });
  await close(session);
});
