import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BASE_URL, SHOTS, close, countTraffic, createTask, gql, launch, openPage, report, unique } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function claim(taskId, limit = 2) {
  const { claimTaskItems } = await gql(
    `mutation($input: ClaimTaskItemsInput!) { claimTaskItems(input: $input) { items { item { index } } } }`,
    { input: { taskId, limit, workerId: 'browser-test' } },
  );
  return claimTaskItems.items.length;
}

async function taskState(id) {
  const { bulkTask } = await gql(`query($id: ID!) { bulkTask(id: $id) { status paused priority } }`, { id });
  return bulkTask;
}

async function confirmWithReason(page, button, reason) {
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Reason (optional)').fill(reason);
  await dialog.getByRole('button', { name: button, exact: true }).click();
}

test('pause stops claims, resume lets them go on, priority changes; the audit tab names who did it', async () => {
  const id = await createTask({ description: unique('To be paused'), items: 10 });
  const session = await openPage(browser);
  const { page } = session;
  await page.goto(`${BASE_URL}/#/tasks/${encodeURIComponent(id)}`);
  await page.locator('.live-tag:not(.is-off)').waitFor();

  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await confirmWithReason(page, 'Pause', 'upstream maintenance window');
  await page.locator('.task-header .badge', { hasText: 'Paused' }).waitFor();
  assert.deepEqual(await taskState(id), { status: 'PAUSED', paused: true, priority: 0 });
  assert.equal(await claim(id), 0, 'a paused task hands out no items');

  await page.getByRole('button', { name: 'Resume', exact: true }).click();
  await confirmWithReason(page, 'Resume', 'maintenance over');
  await page.getByRole('button', { name: 'Pause', exact: true }).waitFor();
  assert.equal((await taskState(id)).paused, false);
  assert.equal(await claim(id), 2, 'a resumed task hands out items again');
  await page.locator('.task-header .badge', { hasText: 'Running' }).waitFor({ timeout: 10_000 });

  const priority = page.getByRole('spinbutton', { name: /^Priority/ });
  await priority.fill('42');
  await page.getByRole('button', { name: 'Set priority' }).click();
  await page.getByRole('status').filter({ hasText: 'Priority set to 42.' }).waitFor();
  assert.equal((await taskState(id)).priority, 42);

  // The audit tab reads its page when it opens: newest first, with the actor.
  const traffic = countTraffic(page);
  await page.getByRole('tab', { name: 'Audit' }).click();
  const panel = page.getByRole('tabpanel');
  const rows = panel.locator('tbody tr');
  await rows.first().waitFor();
  const actions = await rows.locator('td:nth-child(2)').allTextContents();
  assert.deepEqual(actions.slice(0, 3), ['priority', 'resume', 'pause']);
  assert.ok(actions.includes('create'));
  const pauseRow = rows.filter({ hasText: 'upstream maintenance window' });
  assert.match(await pauseRow.locator('td:nth-child(3)').textContent(), /^key /);
  await panel.getByText('maintenance over').waitFor();
  assert.equal(traffic.posts.length, 1, 'the audit tab costs one request');
  assert.match(traffic.posts[0].query, /auditTrail/);
  await page.screenshot({ path: `${SHOTS}detail-audit-1280.png` });
  await close(session);
});

test('the detail shows the result and artifacts, and its export link downloads CSV without a key', async () => {
  const id = await createTask({ description: unique('With a result'), items: 4 });
  await report(id, [
    { index: 0, outcome: 'SUCCEEDED' },
    { index: 1, outcome: 'FAILED', code: 'HLR_TIMEOUT' },
  ]);
  await gql(
    `mutation($input: UpdateBulkTaskInput!) { updateBulkTask(input: $input) { id } }`,
    {
      input: {
        id,
        result: { imported: 3, batch: 'b-17' },
        addArtifacts: [{ name: 'summary_pdf', url: 'https://files.example.test/summary.pdf', contentType: 'application/pdf', sizeBytes: 2048 }],
      },
    },
  );
  const session = await openPage(browser);
  const { page } = session;
  await page.goto(`${BASE_URL}/#/tasks/${encodeURIComponent(id)}`);
  const card = page.getByRole('region', { name: 'Result and files' });
  await card.getByLabel('Result').getByText('"batch": "b-17"').waitFor();
  const artifact = card.getByRole('link', { name: 'summary_pdf' });
  assert.equal(await artifact.getAttribute('href'), 'https://files.example.test/summary.pdf');
  await card.getByText(/application\/pdf · 2\.0 KiB/).waitFor();

  const failures = card.getByRole('link', { name: /Download failures CSV/ });
  const href = await failures.getAttribute('href');
  assert.ok(href, 'the link has a signed URL');
  const response = await fetch(new URL(href, BASE_URL)); // no Authorization header
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /csv/);
  const lines = (await response.text()).trim().split(/\r?\n/);
  assert.match(lines[0], /index/, 'a header row');
  assert.equal(lines.length, 2, 'the header and the one failed item');
  assert.match(lines[1], /HLR_TIMEOUT/);

  const all = await fetch(new URL(await card.getByRole('link', { name: /Export all items CSV/ }).getAttribute('href'), BASE_URL));
  assert.equal((await all.text()).trim().split(/\r?\n/).length, 5);

  // Clicking downloads it in the browser too.
  const [download] = await Promise.all([page.waitForEvent('download'), failures.click()]);
  assert.ok(await download.path());
  await close(session);
});
