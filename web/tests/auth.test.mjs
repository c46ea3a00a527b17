import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BASE_URL, close, launch, openPage } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('a bad key gets a clear message, not a blank page', async () => {
  const session = await openPage(browser, { signedIn: false });
  const { page } = session;
  await page.goto(`${BASE_URL}/`);
  await page.getByLabel('API key').fill(`bw_${'0'.repeat(64)}`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.innerText(), /did not accept this API key/);
  // Back on the form, and the bad key is not kept.
  await page.getByLabel('API key').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('bulkwatch.apiKey')), null);
  await close(session);
});

test('sign out forgets the key', async () => {
  const session = await openPage(browser);
  const { page } = session;
  await page.goto(`${BASE_URL}/`);
  await page.getByRole('heading', { name: 'Bulk tasks' }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API key').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('bulkwatch.apiKey')), null);
  await close(session);
});

test('a page whose scripts cannot load says so', async () => {
  const session = await openPage(browser);
  const { page, context } = session;
  // Break the dashboard's own scripts: the boot text must turn into an error.
  await context.route('**/assets/*.js', (route) => route.fulfill({ status: 404, body: 'missing' }));
  await page.goto(`${BASE_URL}/`);
  await page.getByText("The dashboard's scripts did not load or failed to start.").waitFor({ timeout: 20_000 });
  await close(session);
});
