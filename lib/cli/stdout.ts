/**
 * Lines to standard output for a reader that may leave first, as in
 * `greeter client … | head -2`.
 *
 * @module
 */

/** Where lines go: `Deno.stdout`, or a stand-in. */
export interface SyncWriter {
  /** Writes some of `data`, returning how many bytes were written. */
  writeSync(data: Uint8Array): number;
}

/**
 * Writes lines, and notices when nobody reads them any more. Deno's
 * `console.log` swallows a closed pipe (`EPIPE`) without a word, so a
 * subscription printed into `| head -2` went on for ever; this writer
 * aborts {@linkcode LineWriter.closed} instead, for the caller to end.
 *
 * @example
 * ```ts ignore
 * const out = new LineWriter(Deno.stdout);
 * out.write("hello");
 * if (out.closed.aborted) console.error("the reader has gone");
 * ```
 */
export class LineWriter {
  #out: SyncWriter;
  #closed = new AbortController();
  #encoder = new TextEncoder();

  /** Writes to `out` (default `Deno.stdout`). */
  constructor(out: SyncWriter = Deno.stdout) {
    this.#out = out;
  }

  /** Aborts once the reader has gone (the pipe is closed). */
  get closed(): AbortSignal {
    return this.#closed.signal;
  }

  /**
   * Writes `line` and a newline; does nothing once the reader has gone.
   * Throws what the write throws, except a closed pipe.
   */
  write(line: string): void {
    if (this.#closed.signal.aborted) return;
    const bytes = this.#encoder.encode(line + "\n");
    try {
      for (let at = 0; at < bytes.length;) {
        at += this.#out.writeSync(bytes.subarray(at));
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
      this.#closed.abort(new Error("The reader of standard output has gone"));
    }
  }
}
