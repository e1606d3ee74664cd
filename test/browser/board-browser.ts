/**
 * Headless Chromium (Debian's /usr/bin/chromium through playwright-core) for the board tests: a page
 * that sends the board's basic-auth credentials, never leaves the test server (the UI links a web
 * font), and records the body of every board API response it receives.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

export const BROWSER_TIMEOUT_MS = 60_000;

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS, timeout: BROWSER_TIMEOUT_MS });
}

export async function boardPage(
  browser: Browser,
  origin: string,
  credentials: { username: string; password: string },
  received: string[],
): Promise<Page> {
  const context = await browser.newContext({ httpCredentials: credentials, viewport: { width: 1400, height: 900 } });
  await context.route("**/*", (route) => (route.request().url().startsWith(origin) ? route.continue() : route.abort()));
  const page = await context.newPage();
  page.on("response", (res) => {
    if (res.url().includes("/api/"))
      void res.text().then(
        (t) => received.push(t),
        () => undefined,
      );
  });
  return page;
}

/**
 * Saves a screenshot in the run's artifacts directory. One the docs show (`forDocs`) is also written
 * as docs/img/<name> when UPDATE_SCREENSHOTS=1, so an ordinary run leaves the repository unchanged.
 */
export async function saveScreenshot(page: Page, name: string, forDocs = false): Promise<string> {
  const dir = process.env.TEST_ARTIFACTS_DIR ?? "/tmp";
  const file = path.join(dir, name);
  await page.screenshot({ path: file, fullPage: true });
  if (forDocs && process.env.UPDATE_SCREENSHOTS === "1") {
    const docs = path.resolve(import.meta.dirname, "../../docs/img");
    mkdirSync(docs, { recursive: true });
    copyFileSync(file, path.join(docs, name));
  }
  return file;
}
