/**
 * A real headless Chromium (Debian's `chromium` package) driven by
 * `playwright-core` for the browser tests: launched once per test file,
 * pages that record what went wrong in them, and bounded waits that say
 * what they waited for.
 *
 * @module
 */

import "./skip_wsl_probe.ts"; // before playwright-core: see there
import type {
  Browser,
  BrowserContext,
  BrowserType,
  Locator,
  Page,
} from "playwright-core";
import { settles } from "./server.ts";

/** Where Debian installs it; `.ci/run` installs the package. */
const CHROMIUM_PATHS = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

/** The Chromium binary, or undefined when none is installed. */
export const CHROMIUM_PATH: string | undefined = CHROMIUM_PATHS.find(
  (path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  },
);

/**
 * playwright-core's Chromium driver, or why it could not be loaded (npm
 * unreachable on a first run, and the package not in the cache).
 */
const playwright: { chromium: BrowserType } | string = await import(
  "playwright-core"
).catch((error) =>
  `npm:playwright-core could not be loaded (${
    (error instanceof Error ? error.message : String(error)).split("\n")[0]
      .replace(/\.$/, "")
  }): run deno install`
);

/** Why the browser tests cannot run here, or undefined when they can. */
export const CHROMIUM_MISSING: string | undefined = !CHROMIUM_PATH
  ? "Chromium is not installed (apt-get install chromium)"
  : typeof playwright === "string"
  ? playwright
  : undefined;

if (CHROMIUM_MISSING) {
  console.warn(`The browser tests are ignored: ${CHROMIUM_MISSING}`);
}

/**
 * Headless, as root (no sandbox), and quiet: no GPU, no QUIC, no first-run
 * UI, and no background requests to Google's hosts (updates, sync, field
 * trials), which a test machine may not reach.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-field-trial-config",
];

/** Bound on every single Playwright action and wait (ms), unless told otherwise. */
export const ACTION_TIMEOUT_MS = 5_000;

/** A page of its own (cookies apart) that records what went wrong in it. */
export interface WatchedPage extends AsyncDisposable {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Uncaught exceptions in the page's scripts, in order. */
  readonly errors: string[];
  /** The page's console messages of type error (CSP violations, failed loads…), in order. */
  readonly consoleErrors: string[];
  /**
   * Waits until `locator` matches an element (e.g. the 5th event row:
   * `page.locator("#rows tr").nth(4)`); throws naming `what` after
   * `timeoutMs`, with the page's visible text and errors.
   */
  until(what: string, locator: Locator, timeoutMs?: number): Promise<void>;
  /** The page's visible text, errors and console errors, for a failure message. */
  describe(): Promise<string>;
}

/** The Chromium a test file runs in; dispose of it to close it. */
export interface TestBrowser extends AsyncDisposable {
  readonly browser: Browser;
  /** A new context and page at `url` (loaded), recording its problems. */
  open(url: string): Promise<WatchedPage>;
}

/**
 * Launches headless Chromium (about 0.7 s here): once per test file, a
 * context per page.
 *
 * @example
 * ```ts ignore
 * await using chromium = await launchChromium();
 * await using tab = await chromium.open("http://127.0.0.1:8080/");
 * await tab.until("a row", tab.page.locator("tr"));
 * ```
 */
export async function launchChromium(): Promise<TestBrowser> {
  if (CHROMIUM_MISSING || typeof playwright === "string") {
    throw new Error(`Cannot launch Chromium: ${CHROMIUM_MISSING}`);
  }
  const browser = await playwright.chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_FLAGS],
    timeout: 30_000,
  });
  return {
    browser,
    open: (url) => openPage(browser, url),
    async [Symbol.asyncDispose]() {
      await settles("Chromium to close", browser.close(), 10_000);
    },
  };
}

async function openPage(browser: Browser, url: string): Promise<WatchedPage> {
  const context = await browser.newContext();
  try {
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(10_000);
    const page = await context.newPage();
    const errors: string[] = [];
    const consoleErrors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      const { url } = message.location();
      consoleErrors.push(url ? `${message.text()} (${url})` : message.text());
    });
    await page.goto(url);
    const describe = async () => {
      const text = await page.locator("body").innerText({ timeout: 1000 })
        .catch((error) => `(cannot read the page: ${error})`);
      return [
        `Page text: ${text.slice(0, 1500)}`,
        errors.length ? `Page errors: ${errors.join("; ")}` : "",
        consoleErrors.length
          ? `Console errors: ${consoleErrors.join("; ")}`
          : "",
      ].filter(Boolean).join("\n");
    };
    return {
      page,
      context,
      errors,
      consoleErrors,
      describe,
      async until(what, locator, timeoutMs = ACTION_TIMEOUT_MS) {
        try {
          await locator.first().waitFor({
            state: "attached",
            timeout: timeoutMs,
          });
        } catch (error) {
          throw new Error(
            `Timed out after ${timeoutMs} ms waiting for ${what} in the page.\n${await describe()}`,
            { cause: error },
          );
        }
      },
      async [Symbol.asyncDispose]() {
        await settles("the page to close", context.close(), 10_000);
      },
    };
  } catch (error) {
    await context.close();
    throw error;
  }
}
