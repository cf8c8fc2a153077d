/**
 * A TCP proxy on 127.0.0.1 whose connections can be cut, refused, or frozen
 * (bytes swallowed, nothing closed: a dead network path), at will: the
 * network failing between a client and a server that both stay up.
 *
 * @module
 */

/** Bytes read from one side of a connection, as text, and when they came (`performance.now()`). */
export interface ProxiedChunk {
  readonly at: number;
  readonly text: string;
}

/** One connection through the proxy, as the proxy saw it. */
export interface ProxiedConnection {
  /** When it was accepted (`performance.now()`). */
  readonly acceptedAt: number;
  /** When either side closed it, or it was cut (`performance.now()`). */
  closedAt?: number;
  /** What the client sent (its requests), read by read: the first {@linkcode RECORDED_BYTES}. */
  readonly fromClient: ProxiedChunk[];
  /** What the server sent (its responses), read by read: the first {@linkcode RECORDED_BYTES}. */
  readonly fromServer: ProxiedChunk[];
}

/** How much of each direction a {@linkcode ProxiedConnection} keeps. */
export const RECORDED_BYTES = 1024 * 1024;

/** A running proxy; dispose of it to stop listening and cut everything. */
export class CuttableProxy implements AsyncDisposable {
  /** `127.0.0.1:PORT` to dial instead of the upstream. */
  readonly target: string;
  /**
   * Where new connections go; change it to move them (open ones stay
   * where they are until cut): a load balancer switching instances.
   */
  upstream: { hostname: string; port: number };
  /** Connections accepted so far. */
  accepted = 0;
  /**
   * Every connection forwarded, in the order accepted: when, and what each
   * side said first (a request's head and `Last-Event-ID`, the `retry:` an
   * event stream told).
   */
  readonly connections: ProxiedConnection[] = [];
  /** While true, bytes are swallowed in both directions and nothing closes. */
  frozen = false;
  /**
   * While paused, nothing is read from upstream (see {@linkcode pause}).
   */
  #paused?: PromiseWithResolvers<void>;
  /** While true, new connections are closed at once (the path is down). */
  refusing = false;
  /**
   * What clients sent while frozen, as text (the first 64 KiB): what a
   * test waits on to know that a request went out and will get no answer.
   */
  sentWhileFrozen = "";
  #listener: Deno.Listener;
  #open = new Set<Deno.Conn>();
  #pipes = new Set<Promise<void>>();
  #accepting: Promise<void>;

  /** Listens on 127.0.0.1:0 and forwards each connection to `upstream`. */
  constructor(upstream: { hostname: string; port: number }) {
    this.upstream = upstream;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.target = `127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
    this.#accepting = this.#accept();
  }

  async #accept() {
    for await (const client of this.#listener) {
      this.accepted++;
      if (this.refusing) {
        client.close();
        continue;
      }
      let server: Deno.Conn;
      try {
        server = await Deno.connect(this.upstream);
      } catch {
        client.close();
        continue;
      }
      this.#open.add(client);
      this.#open.add(server);
      const record: ProxiedConnection = {
        acceptedAt: performance.now(),
        fromClient: [],
        fromServer: [],
      };
      this.connections.push(record);
      const pipe = Promise.all([
        this.#copy(client, server, { fromClient: true, record }),
        this.#copy(server, client, { fromClient: false, record }),
      ]).then(() => {
        this.#close(client);
        this.#close(server);
        this.#pipes.delete(pipe);
      });
      this.#pipes.add(pipe);
    }
  }

  async #copy(
    from: Deno.Conn,
    to: Deno.Conn,
    { fromClient, record }: { fromClient: boolean; record: ProxiedConnection },
  ) {
    const buffer = new Uint8Array(64 * 1024);
    const text = new TextDecoder();
    const recording = new TextDecoder();
    const chunks = fromClient ? record.fromClient : record.fromServer;
    let recorded = 0;
    try {
      for (;;) {
        if (!fromClient) await this.#paused?.promise;
        const n = await from.read(buffer);
        if (n === null) break;
        if (recorded < RECORDED_BYTES) {
          recorded += n;
          chunks.push({
            at: performance.now(),
            text: recording.decode(buffer.subarray(0, n), { stream: true }),
          });
        }
        if (this.frozen) {
          if (fromClient && this.sentWhileFrozen.length < 64 * 1024) {
            this.sentWhileFrozen += text.decode(buffer.subarray(0, n), {
              stream: true,
            });
          }
          continue;
        }
        let written = 0;
        while (written < n) {
          written += await to.write(buffer.subarray(written, n));
        }
      }
    } catch {
      // Cut, or the other side went away.
    }
    record.closedAt ??= performance.now();
    this.#close(to);
  }

  #close(conn: Deno.Conn) {
    if (!this.#open.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }

  /**
   * Stops reading from upstream (what was read still goes on): the
   * server's writes back up as they do behind a reader that stopped
   * reading, until {@linkcode resume}.
   */
  pause(): void {
    this.#paused ??= Promise.withResolvers();
  }

  /** Reads from upstream again. */
  resume(): void {
    this.#paused?.resolve();
    this.#paused = undefined;
  }

  /** Cuts every open connection (new ones are still accepted). */
  async cut(): Promise<void> {
    this.resume();
    for (const conn of [...this.#open]) this.#close(conn);
    await Promise.all(this.#pipes);
  }

  /** Stops listening and cuts everything. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting.catch(() => {});
    await this.cut();
  }
}
