import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { BASE_URL, SHOTS, close, countTraffic, createTask, gql, launch, openPage, unique } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** Whether the server under test has webhooks at all. */
async function hasWebhooks() {
  try {
    await gql(`{ webhookEndpoints(first: 1) { nodes { id } } }`);
    return true;
  } catch (err) {
    if (err.code === 'FORBIDDEN') return true;
    return false;
  }
}

/** A receiver on 127.0.0.1 that answers 204 and records every message. */
async function startReceiver() {
  const received = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      received.push({ path: req.url, id: req.headers['webhook-id'], body: JSON.parse(body || 'null') });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, received, url: `http://127.0.0.1:${server.address().port}/hook` };
}

async function until(check, what, timeout = 15_000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('an endpoint is created on its page, a delivery shows in its log, and it is redelivered', async (t) => {
  if (!(await hasWebhooks())) return t.skip('the server has no webhooks');
  const receiver = await startReceiver();
  t.after(() => receiver.server.close());
  const type = `hooks.${Date.now().toString(36)}`;

  const session = await openPage(browser);
  const { page } = session;
  const traffic = countTraffic(page);
  await page.goto(`${BASE_URL}/`);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Endpoints' }).click();
  await page.getByRole('heading', { name: 'Webhook endpoints' }).waitFor();
  const form = page.getByRole('form', { name: 'New endpoint' });
  await form.getByLabel('URL').fill(receiver.url);
  await form.getByLabel(/Task types/).fill(type);
  await form.getByLabel('Description').fill(unique('Receiver'));
  await form.getByLabel('Task created').check();
  await form.getByRole('button', { name: 'Create endpoint' }).click();
  const secret = page.getByLabel('Signing secret', { exact: true });
  assert.match(await secret.textContent(), /^whsec_/);
  const card = page.locator('li.endpoint', { hasText: receiver.url });
  await card.getByText('Enabled', { exact: true }).waitFor();

  await createTask({ type, description: unique('Announced'), items: 2 });
  await until(() => receiver.received.length >= 1, 'the first delivery');
  const firstId = receiver.received[0].id;
  assert.ok(firstId, 'the message has a webhook-id');

  await card.getByRole('button', { name: 'Deliveries' }).click();
  const log = card.getByRole('table', { name: `Deliveries to ${receiver.url}` });
  const rows = log.locator('tbody tr');
  await rows.first().waitFor();
  await log.getByText('TASK_CREATED').first().waitFor();
  // The log is read once; a refresh shows the outcome if the first read came early.
  for (let i = 0; i < 20 && !(await rows.first().getByText('Succeeded').count()); i += 1) {
    await page.waitForTimeout(300);
    await card.getByRole('button', { name: 'Refresh' }).click();
  }
  await rows.first().getByText('Succeeded').waitFor();
  await rows.first().getByText('HTTP 204').waitFor();

  await rows.first().getByRole('button', { name: /^Redeliver/ }).click();
  await card.getByRole('status').filter({ hasText: 'Redelivery queued' }).waitFor();
  await until(() => receiver.received.length >= 2, 'the redelivery');
  assert.equal(receiver.received[1].id, firstId, 'a redelivery keeps the webhook-id');
  assert.equal(await rows.count(), 2);

  const queries = traffic.posts.map((p) => p.query);
  assert.equal(queries.filter((q) => /webhookEndpoints\(/.test(q)).length, 1, 'the page reads its list once');
  await page.screenshot({ path: `${SHOTS}endpoints-1280.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${SHOTS}endpoints-390.png` });

  // Disable, then delete.
  await card.getByRole('button', { name: 'Disable' }).click();
  await card.getByText('Disabled', { exact: true }).waitFor();
  await card.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await card.waitFor({ state: 'detached' });
  await close(session);
});
