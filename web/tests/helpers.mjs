// Shared by the browser tests: the server under test, its API, and a browser
// that may reach nothing but this machine.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const BASE_URL = (process.env.BULKWATCH_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
export const KEY = process.env.BULKWATCH_KEY ?? '';
if (!KEY) throw new Error('set BULKWATCH_KEY to an admin API key of the server at BULKWATCH_URL');

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Screenshots land in target/browser/ at the repository root. */
export const SHOTS = fileURLToPath(new URL('../../target/browser/', import.meta.url));
mkdirSync(SHOTS, { recursive: true });

/** POSTs a GraphQL operation as the test client; returns data or throws the first error. */
export async function gql(query, variables = {}, key = KEY) {
  const response = await fetch(`${BASE_URL}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) {
    const [e] = body.errors;
    throw Object.assign(new Error(`${e.extensions?.code ?? 'ERROR'}: ${e.message}`), { code: e.extensions?.code });
  }
  return body.data;
}

let serial = 0;
/** A label unique to this run, so tests never trip over each other's tasks. */
export function unique(prefix) {
  serial += 1;
  return `${prefix} ${Date.now().toString(36)}-${process.pid}-${serial}`;
}

export async function createTask({ type = 'sims.bulk_provision', description, items = 10 }) {
  const list = Array.from({ length: items }, (_, i) => ({ clientItemId: `item-${i}`, payload: { n: i } }));
  const data = await gql(
    `mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }`,
    { input: { type, description, items: list } },
  );
  return data.createBulkTask.task.id;
}

/** Reports outcomes by index: `results` is a list of {index, outcome, code?}. */
export async function report(taskId, results) {
  const input = {
    taskId,
    results: results.map(({ index, outcome, code }) =>
      outcome === 'FAILED'
        ? { index, outcome, error: { code, message: `${code.toLowerCase().replace(/_/g, ' ')} on item ${index}` } }
        : { index, outcome },
    ),
  };
  const data = await gql(
    `mutation($input: ReportItemResultsInput!) {
       reportItemResults(input: $input) { applied problems { code message } task { progress } }
     }`,
    { input },
  );
  assert.deepEqual(data.reportItemResults.problems, []);
  return data.reportItemResults;
}

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}

/**
 * A fresh context whose requests to any host but 127.0.0.1 are aborted and
 * recorded; every test asserts the list stays empty.
 */
export async function openPage(browser, { width = 1280, height = 800, signedIn = true } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1, locale: 'en-US' });
  const aborted = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    aborted.push(url.href);
    return route.abort();
  });
  if (signedIn) {
    await context.addInitScript((key) => {
      if (!sessionStorage.getItem('bulkwatch.apiKey')) sessionStorage.setItem('bulkwatch.apiKey', key);
    }, KEY);
  }
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  return { context, page, aborted, errors };
}

/** Records GraphQL POSTs, and `connection_init` and `subscribe` messages sent over the page's sockets. */
export function countTraffic(page) {
  const traffic = { posts: [], subscribes: [], inits: [] };
  page.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/graphql') {
      traffic.posts.push(JSON.parse(request.postData() ?? '{}'));
    }
  });
  page.on('websocket', (ws) => {
    ws.on('framesent', ({ payload }) => {
      const message = JSON.parse(String(payload));
      if (message.type === 'subscribe') traffic.subscribes.push(message.payload);
      if (message.type === 'connection_init') traffic.inits.push(message.payload);
    });
  });
  return traffic;
}

export function rowFor(page, taskId) {
  return page.locator(`li.task-row[data-task-id="${taskId}"]`);
}

export async function close({ context, aborted, errors }) {
  await context.close();
  assert.deepEqual(aborted, [], 'the page tried to reach another host');
  assert.deepEqual(errors, [], 'the page threw');
}
