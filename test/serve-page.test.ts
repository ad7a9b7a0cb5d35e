// The page of `moco serve` in headless Chromium: pick an image, its neighbours appear; the
// embedding the page computes itself (onnxruntime-web on /v1/model.onnx) equals the server's within
// 1e-4; the map of the index is drawn; no console error, and no request leaves 127.0.0.1.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import type { Browser } from "playwright-core";

import { startServer, type RunningServer } from "../src/serve/server.js";
import { launchChromium } from "./helpers/browser.js";
import { makeServeFixture, type ServeFixture } from "./helpers/serve-fixture.js";

const root = mkdtempSync(join(tmpdir(), "moco-serve-page-"));
let fixture: ServeFixture;
let server: RunningServer;
let browser: Browser;

interface PageState {
  ready: boolean;
  last: {
    hits?: { id: string; score: number; row: number }[];
    comparison?: { maxAbsDiff: number; browser: number[]; server: number[] } | null;
    error?: string;
  } | null;
}

/**
 * The page's globals, typed here (this project's TypeScript has no DOM types). Functions that
 * Playwright runs in the page cast `globalThis` to this (the cast vanishes when compiled); strings
 * of code would be refused by the page's CSP (no eval).
 */
interface PageGlobals {
  moco?: PageState;
  document: { querySelectorAll(selector: string): ArrayLike<{ naturalWidth: number }> };
}

before(async () => {
  fixture = await makeServeFixture(root, 40, "fp32");
  server = await startServer({ index: fixture.index, port: 0 });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

test("pick an image: neighbours appear, the browser's embedding equals the server's, nothing leaves 127.0.0.1", async (t) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const outside: string[] = [];
  const errors: string[] = [];
  // Anything not addressed to the server is recorded and refused, so the test cannot pass by luck.
  await context.route("**/*", async (route) => {
    const url = new URL(route.request().url());
    if (url.origin === new URL(server.url).origin) return route.continue();
    outside.push(route.request().url());
    return route.abort();
  });
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (!["blob:", "data:"].includes(url.protocol) && url.hostname !== "127.0.0.1") outside.push(request.url());
  });
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));

  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => (globalThis as unknown as PageGlobals).moco?.ready === true, null, {
    timeout: 60_000,
  });
  assert.match((await page.textContent("#browser")) ?? "", /in-browser encoder ready/);
  assert.match((await page.textContent("#map-caption")) ?? "", /^40 of 40 images/);

  const query = fixture.files[7] as string;
  await page.setInputFiles("#file", query);
  await page.waitForFunction(() => (globalThis as unknown as PageGlobals).moco?.last !== null, null, {
    timeout: 60_000,
  });
  const last = await page.evaluate(() => (globalThis as unknown as PageGlobals).moco?.last ?? null);
  assert.ok(last !== null && last.error === undefined, JSON.stringify(last));
  const hits = last.hits ?? [];
  assert.equal(hits.length, 12);
  assert.equal(hits[0]?.id, query, "the image itself is its nearest neighbour");
  assert.equal(await page.locator("#hits .hit").count(), 12);
  assert.match((await page.locator("#hits .hit figcaption").first().textContent()) ?? "", /^1\.0000 · /);
  // Thumbnails are real images served by the server.
  await page.waitForFunction(() =>
    Array.from((globalThis as unknown as PageGlobals).document.querySelectorAll("#hits img")).every(
      (img) => img.naturalWidth > 0,
    ),
  );

  const comparison = last.comparison;
  assert.ok(comparison !== null && comparison !== undefined, "the page computed the embedding itself");
  assert.equal(comparison.browser.length, 32);
  t.diagnostic(`max |browser - server| = ${comparison.maxAbsDiff}`);
  assert.ok(comparison.maxAbsDiff < 1e-4, `max |browser - server| = ${comparison.maxAbsDiff}`);
  assert.match((await page.textContent("#compare")) ?? "", /max \|difference\|/);

  assert.deepEqual(errors, []);
  assert.deepEqual(outside, []);
  await context.close();
});
