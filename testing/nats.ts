/**
 * Real nats-servers for tests and benchmarks: Debian's `nats-server` with
 * JetStream, on a free loopback port, its store in a temporary directory.
 *
 * @module
 */

import { connect } from "@nats-io/transport-node";
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  type User,
} from "@nats-io/jwt";
import { jetstreamManager } from "@nats-io/jetstream";
import { LineProcess } from "./process.ts";
import { waitFor } from "./server.ts";

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
  /**
   * Serve TLS (required of every client) with this certificate and key
   * (PEM paths); with `verify`, require client certificates this CA signed.
   */
  tls?: { cert: string; key: string; verify?: string };
  /**
   * More configuration (nats-server's file format: `authorization { … }`,
   * an operator's), after the address and the store.
   */
  config?: string;
  /** Serve nats-server's monitoring (`/connz`…) on a free port. */
  monitor?: boolean;
  /** Environment variables (which `config` may name as `$NAME`). */
  env?: Record<string, string>;
  /** `false`: no JetStream, as Debian's own `nats-server.service` runs. */
  jetstream?: boolean;
}

/** A running nats-server; dispose of it to stop it and remove its store. */
export interface NatsServer extends AsyncDisposable {
  /** Its client port on 127.0.0.1. */
  readonly port: number;
  /** `nats://127.0.0.1:PORT`. */
  readonly url: string;
  /** Its JetStream store. */
  readonly storeDir: string;
  /** `http://127.0.0.1:PORT`, its monitoring, when asked for. */
  readonly monitorUrl?: string;
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
  const ownStore = options.storeDir === undefined;
  const storeDir = options.storeDir ??
    await Deno.makeTempDir({ prefix: "greeter-nats-" });
  try {
    const monitorPort = options.monitor ? freePort() : undefined;
    const args = [
      ...(options.jetstream === false ? [] : ["-js", "-sd", storeDir]),
      "-a",
      "127.0.0.1",
      "-p",
      String(options.port ?? -1),
      ...(monitorPort === undefined ? [] : ["-m", String(monitorPort)]),
      ...(options.tls
        ? [
          "--tls",
          "--tlscert",
          options.tls.cert,
          "--tlskey",
          options.tls.key,
        ]
        : []),
      ...(options.tls?.verify
        ? ["--tlsverify", "--tlscacert", options.tls.verify]
        : []),
    ];
    if (options.config !== undefined) {
      const file = `${storeDir}/nats.conf`;
      await Deno.writeTextFile(file, options.config);
      args.push("-c", file);
    }
    const server = await spawnNatsServer(
      args,
      storeDir,
      ownStore ? [storeDir] : [],
      10_000,
      options.env,
    );
    return monitorPort === undefined
      ? server
      : { ...server, monitorUrl: `http://127.0.0.1:${monitorPort}` };
  } catch (error) {
    if (ownStore) await Deno.remove(storeDir, { recursive: true });
    throw error;
  }
}

/** Runs nats-server with `args`; disposing of it also removes `owned`. */
async function spawnNatsServer(
  args: string[],
  storeDir: string,
  owned: string[],
  readyMs = 10_000,
  env?: Record<string, string>,
): Promise<NatsServer> {
  const command = natsServerPath();
  if (!command) throw new Error(natsServerMissing());
  const process = new LineProcess(args, { command, env });
  let port: number;
  try {
    const [, found] = await process.waitForLine(
      "stderr",
      /Listening for client connections on 127\.0\.0\.1:(\d+)/,
      readyMs,
    );
    port = Number(found);
    await process.waitForLine("stderr", /Server is ready/, readyMs);
  } catch (error) {
    await process[Symbol.asyncDispose]();
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
      for (const path of owned) await Deno.remove(path, { recursive: true });
    },
  };
}

/** A JetStream cluster of nats-servers; dispose of it to stop them all. */
export interface NatsCluster extends AsyncDisposable {
  /** The nodes, by name `n1`, `n2`, … in order. */
  readonly nodes: readonly NatsServer[];
  /** Every node's client address, `127.0.0.1:PORT`, comma-separated. */
  readonly servers: string;
  /** The node named `name` (as `StreamInfo.cluster.leader` names it). */
  node(name: string): NatsServer;
}

/** A free TCP port on 127.0.0.1 (free when asked; good enough on loopback). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Starts `size` nats-servers (default 3) routed into one JetStream cluster
 * on 127.0.0.1, nodes `n1`…, each with a config file and a store of its own in
 * one temporary directory, and waits until the cluster can place a stream
 * of `size` replicas (before that, creating one fails).
 *
 * @example
 * ```ts ignore
 * await using cluster = await startNatsCluster();
 * cluster.servers; // "127.0.0.1:4xxxx,127.0.0.1:4yyyy,127.0.0.1:4zzzz"
 * ```
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  if (natsServerMissing()) throw new Error(natsServerMissing());
  const dir = await Deno.makeTempDir({ prefix: "greeter-nats-cluster-" });
  const routePorts = Array.from({ length: size }, freePort);
  const nodes: NatsServer[] = [];
  const stopAll = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    const starting = routePorts.map((routePort, i) => {
      const name = `n${i + 1}`;
      const storeDir = `${dir}/${name}`;
      const routes = routePorts.filter((_, j) => j !== i)
        .map((port) => `"nats://127.0.0.1:${port}"`).join(", ");
      const config = `${dir}/${name}.conf`;
      Deno.writeTextFileSync(
        config,
        [
          `server_name: ${name}`,
          `host: "127.0.0.1"`,
          `port: -1`,
          `jetstream { store_dir: "${storeDir}" }`,
          `cluster {`,
          `  name: greeter`,
          `  listen: "127.0.0.1:${routePort}"`,
          `  routes: [${routes}]`,
          `}`,
          "",
        ].join("\n"),
      );
      return spawnNatsServer(["-c", config], storeDir, [], 20_000);
    });
    const started = await Promise.allSettled(starting);
    for (const result of started) {
      if (result.status === "fulfilled") nodes.push(result.value);
    }
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await untilPlaceable(nodes, size);
  } catch (error) {
    await stopAll();
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  return {
    nodes,
    servers: nodes.map((node) => `127.0.0.1:${node.port}`).join(","),
    node(name: string): NatsServer {
      const node = nodes[Number(name.replace(/^n/, "")) - 1];
      if (!node) throw new Error(`No node named "${name}" in the cluster`);
      return node;
    },
    async [Symbol.asyncDispose]() {
      await stopAll();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Waits until the cluster places a stream on all `size` nodes: a metadata
 * leader alone is not enough (until every peer has joined the metadata
 * group, an R3 stream gets "no suitable peers for placement"). Probes with
 * a throwaway stream of that many replicas, bounded to 20 s.
 */
async function untilPlaceable(nodes: NatsServer[], size: number) {
  const servers = nodes.map((node) => `127.0.0.1:${node.port}`);
  const nc = await connect({ servers, reconnectTimeWait: 100 });
  let last: unknown;
  try {
    await waitFor(
      `the NATS cluster to place a stream on ${size} nodes`,
      async () => {
        try {
          const jsm = await jetstreamManager(nc, { timeout: 2_000 });
          await jsm.streams.add({
            name: "cluster_ready_probe",
            subjects: ["cluster_ready_probe"],
            num_replicas: size,
          });
          await jsm.streams.delete("cluster_ready_probe");
          return true;
        } catch (error) {
          last = error;
          return false;
        }
      },
      20_000,
      () => String(last),
    );
  } finally {
    await nc.close();
  }
}

/** A NATS operator of its own, for a nats-server in operator mode. */
export interface NatsOperator {
  /**
   * nats-server configuration that trusts this operator, with its account
   * (JetStream on, no limits) and a system account preloaded in a `MEMORY`
   * resolver: for {@linkcode NatsServerOptions.config}.
   */
  readonly config: string;
  /** A `.creds` file's content for a new user of the account. */
  creds(name: string, user?: Partial<User>): Promise<Uint8Array>;
}

/**
 * An operator, an account and a system account made with nkeys and JWTs (as
 * `nsc` would), so a test can run nats-server in operator mode.
 *
 * @example
 * ```ts ignore
 * const operator = await natsOperator();
 * await using nats = await startNatsServer({ config: operator.config });
 * const creds = await operator.creds("greeter");
 * ```
 */
export async function natsOperator(): Promise<NatsOperator> {
  const operator = createOperator();
  const account = createAccount();
  const system = createAccount();
  const unlimited = {
    conn: -1,
    subs: -1,
    data: -1,
    payload: -1,
    imports: -1,
    exports: -1,
    wildcards: true,
    leaf: -1,
  };
  const [operatorJwt, accountJwt, systemJwt] = await Promise.all([
    encodeOperator("greeter-test", operator, {
      system_account: system.getPublicKey(),
    }),
    encodeAccount("greeter", account, {
      limits: {
        ...unlimited,
        mem_storage: -1,
        disk_storage: -1,
        streams: -1,
        consumer: -1,
      },
    }, { signer: operator }),
    encodeAccount("SYS", system, { limits: unlimited }, { signer: operator }),
  ]);
  return {
    config: [
      `operator: ${operatorJwt}`,
      `system_account: ${system.getPublicKey()}`,
      "resolver: MEMORY",
      "resolver_preload: {",
      `  ${account.getPublicKey()}: ${accountJwt}`,
      `  ${system.getPublicKey()}: ${systemJwt}`,
      "}",
      "",
    ].join("\n"),
    async creds(name, user = {}) {
      const key = createUser();
      return fmtCreds(await encodeUser(name, key, account, user), key);
    },
  };
}
