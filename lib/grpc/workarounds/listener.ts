/**
 * The gRPC port's listener, owned here rather than by grpc-js: it counts
 * connections and closes those beyond a cap, and it survives running out of
 * file descriptors. Accepted sockets are handed to grpc-js (through
 * `Server.createConnectionInjector()`).
 *
 * Why: on Deno 2.9.3 a `node:net` listener that meets `EMFILE` stops
 * accepting for good, silently, even once descriptors are free again (its
 * accept loop stops on the error and nothing wakes it; issue 13). Calling
 * the handle's `listen()` again wakes it, so this listener does that once a
 * second, and checks whether descriptors ran out, to say so in the log.
 *
 * @module
 */

import net from "node:net";
import { bindError } from "../../wire/address.ts";
import type { Logger } from "../../log.ts";
import type { Slots } from "../../bus/slots.ts";

/** Shortest time between two "connection limit" lines. */
const LIMIT_LOG_INTERVAL_MS = 10_000;

/** Connections waiting in the kernel to be accepted (bounds an accept burst). */
const BACKLOG = 128;

/** Descriptors left free when the process runs out: logs, files, metrics, TLS. */
const HEADROOM = 32;

/** The cap never goes below this when lowered. */
const LEAST_CAP = 16;

/** Options of {@linkcode ConnectionListener.listen}. */
export interface ConnectionListenerOptions {
  /** Interface to bind (`::`, `127.0.0.1`, a host name…). */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /**
   * Most connections open at once; those beyond are closed at once. Lowered
   * to the connections open less a headroom of 32 if descriptors run out
   * first (the newest beyond are then closed); raised again, up to this, as
   * far as free descriptors then allow (looked for each check while it is
   * lower: a limit raised later, `prlimit --pid`, is seen).
   */
  maxConnections: number;
  /** Takes each admitted connection. */
  onConnection: (socket: net.Socket) => void;
  /**
   * Each peer's share of connections (`lib/access/peer_shares.ts`): a
   * connection its peer holds its share of is closed at once. Default: none.
   */
  shares?: Slots;
  /**
   * Where `maxConnections` is counted too, when not here alone (a
   * process's workers count theirs together): `take` says whether there
   * was room (and takes it), `give` hands it back when it closes.
   */
  slots?: { take(): boolean; give(): void };
  /** Where running out (and recovering) is said. */
  log: Logger;
  /** How often (ms) the listener is woken and descriptors checked. Default 1000. */
  checkIntervalMs?: number;
  /**
   * Share the port with other processes that ask the same (SO_REUSEPORT):
   * the kernel spreads new connections over them.
   */
  reusePort?: boolean;
}

/** Whether `error` says the process (or the system) is out of descriptors. */
function isExhaustion(error: unknown): boolean {
  return /os error 2[34]\b|EMFILE|ENFILE/.test(String(error));
}

/** Whether opening one more descriptor fails for want of descriptors. */
function outOfDescriptors(): boolean | undefined {
  try {
    Deno.openSync("/dev/null").close();
    return false;
  } catch (error) {
    if (isExhaustion(error)) return true;
    return undefined; // no /dev/null, or no permission: cannot tell
  }
}

/** Most descriptors one look for room opens (see `roomFor`). */
const MOST_PROBED = 1024;

/**
 * How many of `wanted` more descriptors can be opened now, keeping
 * `HEADROOM` free: opens up to `wanted + HEADROOM` handles of `/dev/null`,
 * counts them, and closes them all. (Deno lets no program without every
 * permission read its limits in `/proc`.) Undefined when it cannot tell.
 */
function roomFor(wanted: number): number | undefined {
  const handles: Deno.FsFile[] = [];
  try {
    while (handles.length < wanted + HEADROOM) {
      handles.push(Deno.openSync("/dev/null"));
    }
  } catch (error) {
    if (!isExhaustion(error)) return undefined;
  } finally {
    for (const handle of handles) handle.close();
  }
  return Math.max(0, handles.length - HEADROOM);
}

/**
 * The gRPC port's listening socket: hands each connection to
 * `onConnection`, at most `maxConnections` at once (beyond: closed at once,
 * logged at most once per 10 s). Running out of descriptors is logged and
 * lowers the cap (see {@linkcode ConnectionListenerOptions.maxConnections});
 * accepting resumes within a second of descriptors coming free.
 *
 * @example
 * ```ts ignore
 * const injector = server.createConnectionInjector(credentials);
 * const listener = await ConnectionListener.listen({
 *   host: "127.0.0.1", port: 0, maxConnections: 100, log,
 *   onConnection: (socket) => injector.injectConnection(socket),
 * });
 * await listener.close();
 * ```
 */
export class ConnectionListener {
  #server = net.createServer();
  #options: ConnectionListenerOptions;
  /** Admitted connections, oldest first. */
  #open = new Set<net.Socket>();
  #cap: number;
  #port = 0;
  #refused = 0;
  /** The cap's refusals and a peer share's: a line each at most every 10 s. */
  #capLine = { at: -Infinity, refused: 0 };
  #shareLine = { at: -Infinity, refused: 0 };
  /** Descriptors ran out, and have not come back yet. */
  #exhausted = false;
  #timer?: ReturnType<typeof setInterval>;
  /** Resolves the promise `close()` returned, once nothing is open. */
  #onDrained?: () => void;

  /**
   * Listens on `host:port`; resolves once bound. Rejects with a
   * `GreeterError` naming the address when it cannot bind (`bindError`).
   */
  static async listen(
    options: ConnectionListenerOptions,
  ): Promise<ConnectionListener> {
    const listener = new ConnectionListener(options);
    await listener.#bind();
    return listener;
  }

  private constructor(options: ConnectionListenerOptions) {
    this.#options = options;
    this.#cap = options.maxConnections;
    this.#server.on("connection", (socket) => this.#admit(socket));
  }

  /** The bound port. */
  get port(): number {
    return this.#port;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#open.size;
  }

  /** Connections closed at once because the cap was reached. */
  get refused(): number {
    return this.#refused;
  }

  /** The cap now: as set, or lower once descriptors ran out. */
  get maxConnections(): number {
    return this.#cap;
  }

  /**
   * Stops accepting; open connections stay (their owner closes them).
   * Resolves once every admitted connection has closed.
   */
  close(): Promise<void> {
    clearInterval(this.#timer);
    this.#server.close();
    return new Promise<void>((resolve) => {
      if (this.#open.size === 0) resolve();
      else this.#onDrained = resolve;
    });
  }

  async #bind(): Promise<void> {
    const { host, port, reusePort, log } = this.#options;
    const server = this.#server;
    this.#port = await new Promise<number>((resolve, reject) => {
      const onError = (error: Error) => reject(bindError(host, port, error));
      server.once("error", onError);
      server.listen({ host, port, backlog: BACKLOG, reusePort }, () => {
        server.off("error", onError);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
    server.on("error", (error) => {
      log.error("The gRPC listener failed", { error: String(error) });
    });
    this.#timer = setInterval(
      () => this.#check(),
      this.#options.checkIntervalMs ?? 1000,
    );
    Deno.unrefTimer(this.#timer);
  }

  #admit(socket: net.Socket): void {
    socket.on("error", () => {}); // a reset peer is its owner's business
    const slots = this.#options.slots;
    if (this.#open.size >= this.#cap || (slots && !slots.take())) {
      return this.#refuse(
        socket,
        this.#capLine,
        `Connection limit of ${this.#cap} reached: refusing new connections`,
      );
    }
    const share = this.#options.shares?.take(
      `${socket.remoteAddress}:${socket.remotePort}`,
    );
    if (share?.refused !== undefined) {
      slots?.give();
      return this.#refuse(
        socket,
        this.#shareLine,
        `Refused a connection: ${share.refused} (--max-connections-per-peer)`,
      );
    }
    this.#open.add(socket);
    socket.once("close", () => {
      share?.release?.();
      this.#open.delete(socket);
      slots?.give();
      if (this.#open.size === 0) this.#onDrained?.();
    });
    this.#options.onConnection(socket);
  }

  /** Closes `socket` at once; says `message` at most once per 10 s, counting the refused. */
  #refuse(
    socket: net.Socket,
    line: { at: number; refused: number },
    message: string,
  ): void {
    socket.destroy();
    this.#refused++;
    line.refused++;
    const now = Date.now();
    if (now - line.at < LIMIT_LOG_INTERVAL_MS) return;
    line.at = now;
    this.#options.log.warn(message, { refused: line.refused });
    line.refused = 0;
  }

  /** Once a second: wakes the accept loop, and follows the descriptors. */
  #check(): void {
    // Wakes an accept loop that stopped on EMFILE (Deno 2.9.3); a no-op
    // on one that is waiting.
    (this.#server as unknown as {
      _handle?: { listen(backlog: number): number };
    })._handle?.listen(BACKLOG);
    const out = outOfDescriptors();
    if (out === true && !this.#exhausted) {
      this.#exhausted = true;
      this.#shed();
    } else if (out === false && this.#exhausted) {
      this.#exhausted = false;
      this.#options.log.info(
        "File descriptors available again: accepting connections",
        { connections: this.#open.size },
      );
    }
    if (out === false && this.#cap < this.#options.maxConnections) {
      this.#raise();
    }
  }

  /** Out of descriptors: fewer connections from now on, the newest closed. */
  #shed(): void {
    const before = this.#cap;
    const open = this.#open;
    this.#cap = Math.max(LEAST_CAP, Math.min(before, open.size - HEADROOM));
    const newest = [...open].slice(this.#cap);
    for (const socket of newest) socket.destroy();
    this.#options.log.error(
      `Out of file descriptors with ${open.size} connections open: at most ${this.#cap} from now on (was ${before}); closed the ${newest.length} newest. Raise the open-file limit (ulimit -n) or lower --max-connections`,
      { connections: open.size - newest.length, maxConnections: this.#cap },
    );
  }

  /**
   * Back towards the cap as set, as far as descriptors allow: at most
   * doubling each check, by what {@linkcode roomFor} finds.
   */
  #raise(): void {
    const before = this.#cap;
    const wanted = Math.min(
      this.#options.maxConnections - before,
      Math.max(before, LEAST_CAP),
      MOST_PROBED,
    );
    const room = roomFor(wanted);
    if (!room) return;
    this.#cap += room;
    this.#options.log.info(
      `Connection cap raised to ${this.#cap} (was ${before}): descriptors are free again`,
      { connections: this.#open.size, maxConnections: this.#cap },
    );
  }
}
