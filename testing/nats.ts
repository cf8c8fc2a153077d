/**
 * Real nats-servers for tests and benchmarks: Debian's `nats-server` with
 * JetStream, on a free loopback port, its store in a temporary directory.
 *
 * @module
 */

import { LineProcess } from "./process.ts";

/** Where Debian installs it; `.ci/run` installs the package. */
const NATS_SERVER_PATHS = ["/usr/sbin/nats-server", "/usr/bin/nats-server"];

/** The nats-server binary, or undefined when none is installed. */
export function natsServerPath(): string | undefined {
  for (const path of NATS_SERVER_PATHS) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there.
    }
  }
}

/** Why the NATS tests cannot run here, or undefined when they can. */
export function natsServerMissing(): string | undefined {
  return natsServerPath() === undefined
    ? "nats-server is not installed (apt-get install nats-server)"
    : undefined;
}

/** Options of {@linkcode startNatsServer}. */
export interface NatsServerOptions {
  /** Port to listen on. Default: a free one. */
  port?: number;
  /** JetStream store directory. Default: a new temporary directory. */
  storeDir?: string;
}

/** A running nats-server; dispose of it to stop it and remove its store. */
export interface NatsServer extends AsyncDisposable {
  /** Its client port on 127.0.0.1. */
  readonly port: number;
  /** `nats://127.0.0.1:PORT`. */
  readonly url: string;
  /** Its JetStream store. */
  readonly storeDir: string;
  /** The process. */
  readonly process: LineProcess;
  /** Stops the process (SIGTERM, then SIGKILL past 5 s); keeps the store. */
  stop(): Promise<void>;
}

/**
 * Starts `nats-server -js` on 127.0.0.1 and waits until it accepts clients.
 *
 * @example
 * ```ts ignore
 * await using nats = await startNatsServer();
 * nats.url; // "nats://127.0.0.1:4xxxx"
 * ```
 */
export async function startNatsServer(
  options: NatsServerOptions = {},
): Promise<NatsServer> {
  const command = natsServerPath();
  if (!command) throw new Error(natsServerMissing());
  const ownStore = options.storeDir === undefined;
  const storeDir = options.storeDir ??
    await Deno.makeTempDir({ prefix: "greeter-nats-" });
  const process = new LineProcess([
    "-js",
    "-sd",
    storeDir,
    "-a",
    "127.0.0.1",
    "-p",
    String(options.port ?? -1),
  ], { command });
  let port: number;
  try {
    const [, found] = await process.waitForLine(
      "stderr",
      /Listening for client connections on 127\.0\.0\.1:(\d+)/,
      10_000,
    );
    port = Number(found);
    await process.waitForLine("stderr", /Server is ready/, 10_000);
  } catch (error) {
    await process[Symbol.asyncDispose]();
    if (ownStore) await Deno.remove(storeDir, { recursive: true });
    throw error;
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      process.child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await process.exit(5_000);
  };
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    process,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
      if (ownStore) await Deno.remove(storeDir, { recursive: true });
    },
  };
}
