// Time to first render of the list on a server holding 1,000 tasks. It adds
// 1,000 tasks to the server it runs against (the other tests each follow
// their own tasks); BULKWATCH_PERF=0 leaves it out, e.g. against a server
// in use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BASE_URL, close, gql, launch, openPage } from './helpers.mjs';

const WANTED = 1000;

test('the list renders quickly with 1,000 tasks', { skip: process.env.BULKWATCH_PERF === '0' }, async () => {
  const { bulkTaskStats } = await gql('{ bulkTaskStats { total } }');
  for (let n = bulkTaskStats.total; n < WANTED; n += 1) {
    await gql(`mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }`, {
      input: {
        type: ['sims.bulk_provision', 'ledger.export', 'contacts.import'][n % 3],
        description: `Load task ${n}`,
        items: Array.from({ length: 5 }, (_, i) => ({ clientItemId: `i${i}`, payload: { i } })),
      },
    });
  }
  const browser = await launch();
  try {
    for (const pageSize of [20, 100]) {
      const timings = [];
      for (let run = 0; run < 3; run += 1) {
        const session = await openPage(browser);
        const { page, context } = session;
        await context.addInitScript(() => {
          // Records when the first row is in the DOM, measured from navigation start.
          new MutationObserver((_, observer) => {
            if (document.querySelector('li.task-row')) {
              window.__firstRow = performance.now();
              observer.disconnect();
            }
          }).observe(document, { childList: true, subtree: true });
        });
        await page.goto(`${BASE_URL}/`);
        await page.locator('li.task-row').nth(19).waitFor();
        if (pageSize === 20) {
          timings.push(await page.evaluate(() => window.__firstRow));
        } else {
          // From choosing the page size to the last row on screen.
          const t0 = await page.evaluate(() => performance.now());
          await page.locator('.pager-size select').selectOption(String(pageSize));
          await page.locator('li.task-row').nth(pageSize - 1).waitFor();
          timings.push((await page.evaluate(() => performance.now())) - t0);
        }
        await close(session);
      }
      const best = Math.min(...timings);
      console.log(`list of ${WANTED}+ tasks, ${pageSize} per page: ${pageSize === 20 ? 'navigation to first row' : 'page size switch to last row'} ${timings.map((t) => t.toFixed(0)).join(', ')} ms`);
      assert.ok(best < 3000, `first render took ${best} ms`);
    }
  } finally {
    await browser.close();
  }
});
