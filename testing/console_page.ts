/**
 * The live console (`lib/http/console/`) as a test drives it in Chromium:
 * what it shows (events, notices, its state) read from the page as a
 * person sees it, and its forms filled and submitted as a person does.
 *
 * @module
 */

import type { TestBrowser, WatchedPage } from "./browser.ts";

/** An event row of the console's log. */
export interface ShownEvent {
  /** `EPOCH:SEQ`. */
  cursor: string;
  topic: string;
  /** The payload cell's text (a base64 payload starts with its tag). */
  payload: string;
  /** `text`, `base64` or `empty`. */
  payloadKind: string;
}

/** A row of the log that is not an event: a notice, warning or error. */
export interface ShownNotice {
  kind: "notice" | "warning" | "error";
  text: string;
}

/** The console open in a page; dispose of it to close the page. */
export class ConsolePage implements AsyncDisposable {
  readonly tab: WatchedPage;

  private constructor(tab: WatchedPage) {
    this.tab = tab;
  }

  /** Opens the console at `url` (its `?topic=` chooses what it follows) in a page of its own. */
  static async open(chromium: TestBrowser, url: string): Promise<ConsolePage> {
    return new ConsolePage(await chromium.open(url));
  }

  /** The log's event rows, oldest first. */
  events(): Promise<ShownEvent[]> {
    return this.tab.page.locator("#rows tr[data-kind=event]").evaluateAll(
      (rows) =>
        rows.reverse().map((row) => ({
          cursor: row.getAttribute("data-cursor") ?? "",
          topic: row.getAttribute("data-topic") ?? "",
          payload: row.querySelector("td.payload")?.textContent ?? "",
          payloadKind:
            row.querySelector("td.payload")?.getAttribute("data-payload") ??
              "",
        })),
    );
  }

  /** The payloads of the log's events on `topic`, oldest first. */
  async payloads(topic: string): Promise<string[]> {
    return (await this.events()).filter((e) => e.topic === topic)
      .map((e) => e.payload);
  }

  /** The log's other rows (subscribed, resumed, gaps, losses, refusals), oldest first. */
  notices(): Promise<ShownNotice[]> {
    return this.tab.page.locator("#rows tr:not([data-kind=event])")
      .evaluateAll((rows) =>
        rows.reverse().map((row) => ({
          kind: row.getAttribute("data-kind") as ShownNotice["kind"],
          text: row.textContent ?? "",
        }))
      );
  }

  /** The connection state shown in the header: its name and text. */
  async state(): Promise<{ state: string; text: string }> {
    const state = this.tab.page.locator("#state");
    return {
      state: await state.getAttribute("data-state") ?? "",
      text: (await state.textContent() ?? "").trim(),
    };
  }

  /** Waits for an event row on `topic` whose payload contains `text`. */
  async untilEvent(
    topic: string,
    text = "",
    timeoutMs?: number,
  ): Promise<void> {
    await this.tab.until(
      `an event on ${topic}${text ? ` with "${text}"` : ""}`,
      this.tab.page.locator(
        `#rows tr[data-kind=event][data-topic="${topic}"]`,
        {
          hasText: text,
        },
      ),
      timeoutMs,
    );
  }

  /** Waits for `count` event rows on `topic`. */
  async untilEvents(
    topic: string,
    count: number,
    timeoutMs?: number,
  ): Promise<void> {
    await this.tab.until(
      `${count} events on ${topic}`,
      this.tab.page.locator(`#rows tr[data-kind=event][data-topic="${topic}"]`)
        .nth(count - 1),
      timeoutMs,
    );
  }

  /** Waits for a row of `kind` (notice, warning, error) containing `text`. */
  async untilNotice(
    kind: ShownNotice["kind"],
    text: string | RegExp,
    timeoutMs?: number,
  ): Promise<void> {
    await this.tab.until(
      `a ${kind} row with ${text}`,
      this.tab.page.locator(`#rows tr[data-kind=${kind}]`, { hasText: text }),
      timeoutMs,
    );
  }

  /** Waits until the header's state is `state` (open, reconnecting, refused…). */
  async untilState(state: string, timeoutMs?: number): Promise<void> {
    await this.tab.until(
      `the state "${state}"`,
      this.tab.page.locator(`#state[data-state="${state}"]`),
      timeoutMs,
    );
  }

  /** Subscribes to `topics` with the form (typed, then the button). */
  async subscribe(topics: string): Promise<void> {
    await this.tab.page.fill("#topics", topics);
    await this.tab.page.click("#subscribe button[type=submit]");
  }

  /**
   * Publishes with the form; resolves with what the form then says
   * ("Published on … at CURSOR", or why not).
   */
  async publish(
    topic: string,
    payload: string,
    options: { base64?: boolean } = {},
  ): Promise<string> {
    const page = this.tab.page;
    await page.fill("#publish-topic", topic);
    await page.fill("#publish-payload", payload);
    await page.setChecked("#publish-base64", options.base64 ?? false);
    await page.click("#publish button[type=submit]");
    return await this.#answer("#publish-result", "publish's answer");
  }

  /** Lists presence with the form; resolves with the names listed, in order. */
  async presence(topic = ""): Promise<{ summary: string; names: string[] }> {
    const page = this.tab.page;
    await page.fill("#presence-topic", topic);
    await page.click("#presence button[type=submit]");
    const summary = await this.#answer("#presence-result", "the listing");
    const names = await page.locator("#subscriber-rows tr td:first-child")
      .allTextContents();
    return { summary, names };
  }

  /** Submits a token with the form; resolves with what the form then says. */
  async useToken(token: string): Promise<string> {
    const page = this.tab.page;
    await page.fill("#token-value", token);
    await page.click("#token button[type=submit]");
    return await this.#answer("#token-result", "the token's answer");
  }

  /**
   * The text of `selector` once it no longer says it is busy ("…"): each
   * form says so as its button is clicked, so an older answer is not read.
   */
  async #answer(selector: string, what: string): Promise<string> {
    const output = this.tab.page.locator(selector);
    await this.tab.until(
      what,
      this.tab.page.locator(`${selector}:not(:empty)`).filter({
        hasNotText: /…$/,
      }),
    );
    return (await output.textContent() ?? "").trim();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.tab[Symbol.asyncDispose]();
  }
}
