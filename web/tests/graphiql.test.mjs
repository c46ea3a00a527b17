import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BASE_URL, KEY, SHOTS, close, countTraffic, createTask, launch, openPage, report, unique } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** Replaces the query editor's text, as typing would. */
const setQuery = (page, text) =>
  page.evaluate((value) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(value), text);

const response = (page) =>
  page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '');

test('GraphiQL opens with the tour, runs a query, and runs a subscription over the socket', async () => {
  const session = await openPage(browser);
  const { page } = session;
  const traffic = countTraffic(page);
  await page.goto(`${BASE_URL}/graphiql`);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
  for (const name of ['CreateTask', 'ReportResults', 'TasksWithFailures', 'WatchTask']) {
    await page.getByRole('tab', { name }).waitFor();
  }
  await page.screenshot({ path: `${SHOTS}graphiql-1280.png` });

  await setQuery(page, '{ bulkTaskStats { total } }');
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(
    () => /"total": \d+/.test(document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? ''),
  );

  // Edited in and run at once: it must go over the WebSocket, never over HTTP.
  const id = await createTask({ description: unique('Watched in GraphiQL'), items: 2 });
  const postsBefore = traffic.posts.length;
  await setQuery(page, `subscription { bulkTaskUpdated(id: "${id}") { status version counters { succeeded } } }`);
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(
    () => /"status": "QUEUED"/.test(document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? ''),
  );
  await report(id, [{ index: 0, outcome: 'SUCCEEDED' }]);
  await page.waitForFunction(
    () => /"succeeded": 1/.test(document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? ''),
    null,
    { timeout: 10_000 },
  );
  assert.doesNotMatch(await response(page), /not supported on this transport/);
  assert.equal(traffic.posts.slice(postsBefore).filter((p) => /subscription/.test(p.query ?? '')).length, 0);
  assert.equal(traffic.subscribes.filter((s) => /bulkTaskUpdated/.test(s.query)).length, 1);
  // The Headers tab (started with the dashboard's key) is the connection_init payload.
  assert.deepEqual(traffic.inits, [{ Authorization: `Bearer ${KEY}` }]);
  await close(session);
});
