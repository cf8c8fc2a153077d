/**
 * Test helpers for the HTTP transport: a server-sent event stream read
 * block by block, as the HTML standard's parser reads it (fields, comments,
 * the blank line that dispatches), and a Connect or gRPC-Web body read
 * envelope by envelope; every read bounded in time.
 *
 * @module
 */

import { settles } from "./server.ts";

/** One block of a server-sent event stream (up to its blank line). */
export interface SseBlock {
  /** The `event:` field, if any. */
  event?: string;
  /** The `id:` field, if any. */
  id?: string;
  /** The `data:` lines joined by `\n`, if any. */
  data?: string;
  /** The `retry:` field, if any. */
  retry?: number;
  /** Comment lines (`: …`), without their colon and space. */
  comments: string[];
}

/** Parses one block's lines. */
function parseBlock(lines: readonly string[]): SseBlock {
  const block: SseBlock = { comments: [] };
  const data: string[] = [];
  for (const line of lines) {
    if (line.startsWith(":")) {
      block.comments.push(line.slice(1).trimStart());
      continue;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") block.event = value;
    else if (field === "id") block.id = value;
    else if (field === "data") data.push(value);
    else if (field === "retry") block.retry = Number(value);
  }
  if (data.length > 0) block.data = data.join("\n");
  return block;
}

/**
 * An event stream's body read block by block. Dispose of it to cancel the
 * body (the client goes away).
 *
 * @example
 * ```ts ignore
 * await using events = new SseReader(await fetch(url));
 * const first = await events.next(); // { event: "first", id: "e:0", … }
 * ```
 */
export class SseReader implements AsyncDisposable {
  readonly response: Response;
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #done = false;

  /** Reads `response`'s body. */
  constructor(response: Response) {
    this.response = response;
    this.#reader = response.body!.pipeThrough(new TextDecoderStream())
      .getReader();
  }

  /** Whether the stream has ended. */
  get done(): boolean {
    return this.#done && this.#buffer.indexOf("\n\n") < 0;
  }

  /**
   * The next block, or undefined once the stream ended; rejects after
   * `timeoutMs` without one.
   */
  async next(timeoutMs = 5000): Promise<SseBlock | undefined> {
    for (;;) {
      const end = this.#buffer.indexOf("\n\n");
      if (end >= 0) {
        const lines = this.#buffer.slice(0, end).split("\n");
        this.#buffer = this.#buffer.slice(end + 2);
        return parseBlock(lines);
      }
      if (this.#done) return undefined;
      const { done, value } = await settles(
        "the next server-sent event",
        this.#reader.read(),
        timeoutMs,
      );
      if (done) this.#done = true;
      else this.#buffer += value;
    }
  }

  /** Blocks until one matches `match` (the ones before it included), within `timeoutMs` in all. */
  async until(
    match: (block: SseBlock) => boolean,
    timeoutMs = 5000,
  ): Promise<SseBlock[]> {
    const deadline = Date.now() + timeoutMs;
    const blocks: SseBlock[] = [];
    for (;;) {
      const block = await this.next(Math.max(1, deadline - Date.now()));
      if (!block) {
        throw new Error(
          `The stream ended before the block awaited: ${
            JSON.stringify(blocks)
          }`,
        );
      }
      blocks.push(block);
      if (match(block)) return blocks;
    }
  }

  /** Every block until the stream ends (within `timeoutMs`). */
  async rest(timeoutMs = 5000): Promise<SseBlock[]> {
    const deadline = Date.now() + timeoutMs;
    const blocks: SseBlock[] = [];
    for (;;) {
      const block = await this.next(Math.max(1, deadline - Date.now()));
      if (!block) return blocks;
      blocks.push(block);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** One envelope of a Connect or gRPC-Web body: its flags and its bytes. */
export interface Envelope {
  flags: number;
  data: Uint8Array;
}

/**
 * A Connect or gRPC-Web streaming body read envelope by envelope, every
 * read bounded in time. Dispose of it to cancel the body.
 *
 * @example
 * ```ts ignore
 * await using stream = new EnvelopeReader(await fetch(url, { method: "POST", body }));
 * const first = await stream.next(); // { flags: 0, data: … }
 * ```
 */
export class EnvelopeReader implements AsyncDisposable {
  readonly response: Response;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer = new Uint8Array(0);
  #done = false;

  /** Reads `response`'s body. */
  constructor(response: Response) {
    this.response = response;
    this.#reader = response.body!.getReader();
  }

  /** The next envelope, or undefined once the body ended. */
  async next(timeoutMs = 5000): Promise<Envelope | undefined> {
    for (;;) {
      if (this.#buffer.length >= 5) {
        const length = new DataView(
          this.#buffer.buffer,
          this.#buffer.byteOffset,
        )
          .getUint32(1);
        if (this.#buffer.length >= 5 + length) {
          const envelope = {
            flags: this.#buffer[0],
            data: this.#buffer.slice(5, 5 + length),
          };
          this.#buffer = this.#buffer.slice(5 + length);
          return envelope;
        }
      }
      if (this.#done) return undefined;
      const { done, value } = await settles(
        "the next envelope",
        this.#reader.read(),
        timeoutMs,
      );
      if (done) this.#done = true;
      else {
        const joined = new Uint8Array(this.#buffer.length + value.length);
        joined.set(this.#buffer);
        joined.set(value, this.#buffer.length);
        this.#buffer = joined;
      }
    }
  }

  /** Every envelope until the body ends (within `timeoutMs`). */
  async rest(timeoutMs = 5000): Promise<Envelope[]> {
    const deadline = Date.now() + timeoutMs;
    const envelopes: Envelope[] = [];
    for (;;) {
      const envelope = await this.next(Math.max(1, deadline - Date.now()));
      if (!envelope) return envelopes;
      envelopes.push(envelope);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** `data` in an envelope with `flags`. */
export function enveloped(
  data: Uint8Array,
  flags = 0,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}
