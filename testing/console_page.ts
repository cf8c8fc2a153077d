/**
 * The live console (`lib/http/console/`) as a test drives it in Chromium:
 * what it shows (events, notices, its state) read from the page as a
 * person sees it, and its forms filled and submitted as a person does.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { TestBrowser, WatchedPage } from "./browser.ts";

/** An event row of the console's log. */
export interface ShownEvent {
  kind: "event";
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

  /** Every row of the log, oldest first: events and the rest, as shown. */
  log(): Promise<(ShownEvent | ShownNotice)[]> {
    return this.tab.page.locator("#rows tr").evaluateAll((rows) =>
      rows.reverse().map((row) => {
        const kind = row.getAttribute("data-kind") ?? "";
        if (kind !== "event") {
          return { kind, text: row.textContent ?? "" } as ShownNotice;
        }
        const payload = row.querySelector("td.payload");
        return {
          kind,
          cursor: row.getAttribute("data-cursor") ?? "",
          topic: row.getAttribute("data-topic") ?? "",
          payload: payload?.textContent ?? "",
          payloadKind: payload?.getAttribute("data-payload") ?? "",
        } as ShownEvent;
      })
    );
  }

  /** The log's event rows, oldest first. */
  async events(): Promise<ShownEvent[]> {
    return (await this.log()).filter((row): row is ShownEvent =>
      row.kind === "event"
    );
  }

  /** The log's other rows (subscribed, resumed, gaps, losses, refusals), oldest first. */
  async notices(): Promise<ShownNotice[]> {
    return (await this.log()).filter((row): row is ShownNotice =>
      row.kind !== "event"
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

  /**
   * Waits until the log holds as many events on `topic` as `payloads`,
   * then asserts they are exactly those, in order (nothing missed, nothing
   * twice), at growing cursors.
   */
  async assertShowsExactly(topic: string, payloads: string[]): Promise<void> {
    await this.untilEvents(topic, payloads.length);
    const events = (await this.events()).filter((e) => e.topic === topic);
    assert.deepEqual(events.map((e) => e.payload), payloads);
    const seqs = events.map((e) => BigInt(e.cursor.split(":")[1]));
    assert.ok(
      seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]),
      `cursors grow: ${seqs.join(" ")}`,
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

  // The forms are reached as a person reaches them: fields by their labels,
  // buttons by their names (so a lost label fails the tests), and Enter
  // submits where a person would press it.

  /** Subscribes to `topics` (resuming after `after`, if given): typed, then Enter. */
  async subscribe(topics: string, after = ""): Promise<void> {
    const page = this.tab.page;
    await page.getByLabel("Resume after").fill(after);
    const field = page.getByLabel("Topics", { exact: true });
    await field.fill(topics);
    await field.press("Enter");
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
    await page.getByLabel("Topic", { exact: true }).fill(topic);
    await page.getByLabel("Payload", { exact: true }).fill(payload);
    await page.getByLabel("Payload is base64").setChecked(
      options.base64 ?? false,
    );
    await page.getByRole("button", { name: "Publish" }).click();
    return await this.#answer("#publish-result", "publish's answer");
  }

  /** Lists presence with the form; resolves with the names listed, in order. */
  async presence(topic = ""): Promise<{ summary: string; names: string[] }> {
    const page = this.tab.page;
    await page.getByLabel("Topic (optional)").fill(topic);
    await page.getByRole("button", { name: "List subscribers" }).click();
    const summary = await this.#answer("#presence-result", "the listing");
    const names = await page.getByRole("table", { name: "Live subscriptions" })
      .locator("tbody td:first-child").allTextContents();
    return { summary, names };
  }

  /** Submits a token (typed, then Enter); resolves with what the form then says. */
  async useToken(token: string): Promise<string> {
    const field = this.tab.page.getByLabel("Bearer token");
    await field.fill(token);
    await field.press("Enter");
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
