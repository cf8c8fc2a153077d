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
import { GreeterError } from "../../errors.ts";
import { formatAddress } from "../../wire/address.ts";
import type { Logger } from "../../log.ts";

/** Shortest time between two "connection limit" lines. */
const LIMIT_LOG_INTERVAL_MS = 10_000;

/** Connections waiting in the kernel to be accepted (bounds an accept burst). */
const BACKLOG = 128;

/** Descriptors left free when the process runs out: logs, files, metrics, TLS. */
const HEADROOM = 32;

/** The cap never goes below this when lowered. */
const LEAST_CAP = 16;

/** Options of {@linkcode listenForConnections}. */
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

/** A listening socket, as returned by {@linkcode listenForConnections}. */
export interface ConnectionListener {
  /** The bound port. */
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  /** Connections closed at once because the cap was reached. */
  readonly refused: number;
  /** The cap now: as set, or lower once descriptors ran out. */
  readonly maxConnections: number;
  /**
   * Stops accepting; open connections stay (their owner closes them).
   * Resolves once every admitted connection has closed.
   */
  close(): Promise<void>;
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
 * Listens on `host:port` and hands each connection to `onConnection`, at
 * most `maxConnections` at once (beyond: closed at once, logged at most once
 * per 10 s). Running out of descriptors is logged and lowers the cap (see
 * {@linkcode ConnectionListenerOptions.maxConnections}); accepting resumes
 * within a second of descriptors coming free. Rejects with a {@linkcode GreeterError} naming the address when
 * it cannot bind.
 *
 * @example
 * ```ts ignore
 * const injector = server.createConnectionInjector(credentials);
 * const listener = await listenForConnections({
 *   host: "127.0.0.1", port: 0, maxConnections: 100, log,
 *   onConnection: (socket) => injector.injectConnection(socket),
 * });
 * listener.close();
 * ```
 */
export async function listenForConnections(
  options: ConnectionListenerOptions,
): Promise<ConnectionListener> {
  const { host, port, onConnection, log } = options;
  let cap = options.maxConnections;
  const server = net.createServer();
  /** Admitted connections, oldest first. */
  const open = new Set<net.Socket>();
  /** Resolves the promise `close()` returned, once nothing is open. */
  let onDrained: (() => void) | undefined;
  let refused = 0;
  let refusedSinceLine = 0;
  let lastLimitLine = -Infinity;
  server.on("connection", (socket: net.Socket) => {
    socket.on("error", () => {}); // a reset peer is its owner's business
    if (open.size >= cap) {
      socket.destroy();
      refused++;
      refusedSinceLine++;
      const now = Date.now();
      if (now - lastLimitLine >= LIMIT_LOG_INTERVAL_MS) {
        lastLimitLine = now;
        log.warn(
          `Connection limit of ${cap} reached: refusing new connections`,
          { refused: refusedSinceLine },
        );
        refusedSinceLine = 0;
      }
      return;
    }
    open.add(socket);
    socket.once("close", () => {
      open.delete(socket);
      if (open.size === 0) onDrained?.();
    });
    onConnection(socket);
  });
  const bound = await new Promise<number>((resolve, reject) => {
    const onError = (error: Error) => {
      reject(
        new GreeterError(
          `Cannot bind "${formatAddress(host, port)}": ${error.message}`,
          { cause: error },
        ),
      );
    };
    server.once("error", onError);
    server.listen({
      host,
      port,
      backlog: BACKLOG,
      reusePort: options.reusePort,
    }, () => {
      server.off("error", onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
  server.on("error", (error) => {
    log.error("The gRPC listener failed", { error: String(error) });
  });
  let exhausted = false;
  /** Out of descriptors: fewer connections from now on, the newest closed. */
  const shed = () => {
    const before = cap;
    cap = Math.max(LEAST_CAP, Math.min(cap, open.size - HEADROOM));
    const newest = [...open].slice(cap);
    for (const socket of newest) socket.destroy();
    log.error(
      `Out of file descriptors with ${open.size} connections open: at most ${cap} from now on (was ${before}); closed the ${newest.length} newest. Raise the open-file limit (ulimit -n) or lower --max-connections`,
      { connections: open.size - newest.length, maxConnections: cap },
    );
  };
  const check = () => {
    // Wakes an accept loop that stopped on EMFILE (Deno 2.9.3); a no-op
    // on one that is waiting.
    (server as unknown as { _handle?: { listen(backlog: number): number } })
      ._handle?.listen(BACKLOG);
    const out = outOfDescriptors();
    if (out === true && !exhausted) {
      exhausted = true;
      shed();
    } else if (out === false && exhausted) {
      exhausted = false;
      log.info("File descriptors available again: accepting connections", {
        connections: open.size,
      });
    }
    if (out === false && cap < options.maxConnections) raise();
  };
  /**
   * Back towards the cap as set, as far as descriptors allow: at most
   * doubling each check, by what {@linkcode roomFor} finds.
   */
  const raise = () => {
    const wanted = Math.min(
      options.maxConnections - cap,
      Math.max(cap, LEAST_CAP),
      MOST_PROBED,
    );
    const room = roomFor(wanted);
    if (!room) return;
    const before = cap;
    cap += room;
    log.info(
      `Connection cap raised to ${cap} (was ${before}): descriptors are free again`,
      { connections: open.size, maxConnections: cap },
    );
  };
  const timer = setInterval(check, options.checkIntervalMs ?? 1000);
  Deno.unrefTimer(timer);
  return {
    port: bound,
    get connections() {
      return open.size;
    },
    get refused() {
      return refused;
    },
    get maxConnections() {
      return cap;
    },
    close() {
      clearInterval(timer);
      server.close();
      return new Promise<void>((resolve) => {
        if (open.size === 0) resolve();
        else onDrained = resolve;
      });
    },
  };
}
