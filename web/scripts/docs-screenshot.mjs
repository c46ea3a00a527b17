// Fills an empty server with a few realistic tasks and saves the list view
// as docs/dashboard.png (1280x800). Reads BULKWATCH_URL and BULKWATCH_KEY.
//
//   node scripts/docs-screenshot.mjs
import { fileURLToPath } from 'node:url';
import { BASE_URL, gql, launch, openPage } from '../tests/helpers.mjs';

const OUT = fileURLToPath(new URL('../../docs/dashboard.png', import.meta.url));

async function task(type, description, total) {
  const items = Array.from({ length: total }, (_, i) => ({ clientItemId: `${type.split('.')[0]}-${i}`, payload: { i } }));
  const data = await gql(`mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }`, {
    input: { type, description, items },
  });
  return data.createBulkTask.task.id;
}

async function outcomes(taskId, from, to, pick) {
  const results = [];
  for (let index = from; index < to; index += 1) {
    const failure = pick(index);
    results.push(
      failure
        ? { index, outcome: 'FAILED', error: { code: failure, message: `${failure.toLowerCase().replace(/_/g, ' ')}` } }
        : { index, outcome: 'SUCCEEDED' },
    );
  }
  await gql(`mutation($input: ReportItemResultsInput!) { reportItemResults(input: $input) { applied } }`, {
    input: { taskId, results },
  });
}

const claim = (taskId, limit, workerId) =>
  gql(`mutation($input: ClaimTaskItemsInput!) { claimTaskItems(input: $input) { items { leaseToken } } }`, {
    input: { taskId, limit, workerId, leaseSeconds: 600 },
  });

const none = () => null;

const sync = await task('catalog.sync', 'Sync the price book to the web shop', 450);
const emails = await task('notifications.email', 'Send contract renewal e-mails', 3000);
await outcomes(emails, 0, 140, (i) => (i % 9 === 0 ? 'SMTP_REJECTED' : null));
await gql(`mutation($input: FailBulkTaskInput!) { failBulkTask(input: $input) { id } }`, {
  input: { id: emails, code: 'SMTP_RELAY_DOWN', message: 'the relay refused every connection' },
});
const churn = await task('sims.bulk_deactivate', 'Deactivate churned SIMs (October)', 300);
await outcomes(churn, 0, 120, none);
await gql(`mutation($id: ID!) { cancelBulkTask(id: $id) { id } }`, { id: churn });
const rerate = await task('billing.rerate', 'Re-rate roaming CDRs after the tariff fix', 800);
await outcomes(rerate, 0, 800, (i) => (i % 23 === 0 ? 'TARIFF_NOT_FOUND' : i % 57 === 0 ? 'CDR_MALFORMED' : null));
const ledger = await task('ledger.export', 'Export the November ledger', 1200);
await outcomes(ledger, 0, 1200, none);
const contacts = await task('contacts.import', 'Import 50k CRM contacts, batch 3 of 10', 5000);
await outcomes(contacts, 0, 1750, (i) => (i % 97 === 0 ? 'EMAIL_INVALID' : null));
await claim(contacts, 100, 'importer-2');
const sims = await task('sims.bulk_provision', 'Provision SIMs for ACME', 2000);
await outcomes(sims, 0, 1240, (i) => (i % 31 === 0 ? 'HLR_TIMEOUT' : i % 113 === 0 ? 'ICCID_UNKNOWN' : null));
await claim(sims, 50, 'provisioner-1');
void sync;

const browser = await launch();
const { page, context } = await openPage(browser);
await page.goto(`${BASE_URL}/`);
await page.locator(`li.task-row`).nth(6).waitFor();
await page.locator('.live-open').waitFor();
await page.waitForTimeout(500);
await page.screenshot({ path: OUT });
await context.close();
await browser.close();
console.log(`saved ${OUT}`);
