// Opens a local page in Debian's headless Chromium (playwright-core drives it) and records what a
// user would care about: console errors, uncaught exceptions, and every request the page makes.
// A page that is meant to work from disk anywhere must request nothing but file: and data: URLs.
import { chromium, type Browser, type Page } from "playwright-core";
import { pathToFileURL } from "node:url";

export const CHROMIUM = "/usr/bin/chromium";

/** Headless, and nothing of Chromium's own that would reach the network (updates, sync, ...). */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
];

/** Debian's Chromium, launched headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
}

export interface OpenedPage {
  page: Page;
  /** Console errors and uncaught exceptions, in order. */
  errors: string[];
  /** Every URL requested (the page itself included). */
  requests: string[];
  close(): Promise<void>;
}

/** Loads `file` (a path) and waits for it to settle; requests other than file:/data: are refused. */
export async function openLocalPage(file: string): Promise<OpenedPage> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    page.on("pageerror", (error) => errors.push(`uncaught: ${error.message}`));
    await page.route("**/*", async (route) => {
      const url = route.request().url();
      requests.push(url);
      if (url.startsWith("file:") || url.startsWith("data:")) await route.continue();
      else await route.abort();
    });
    page.on("request", (request) => {
      // data: URLs do not reach route handlers; record them here too (deduplicated below).
      if (!requests.includes(request.url())) requests.push(request.url());
    });
    await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
    return { page, errors, requests, close: () => browser.close() };
  } catch (error) {
    await browser.close();
    throw error;
  }
}

/** The requests that left the file system (anything but file: and data:). */
export function networkRequests(requests: readonly string[]): string[] {
  return requests.filter((url) => !url.startsWith("file:") && !url.startsWith("data:"));
}
