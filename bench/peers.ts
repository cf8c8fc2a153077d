/**
 * The servers the greeter is compared with, where this machine has them:
 * the bare grpc-js baseline on Deno (`bench/baseline_server.ts`), grpc-go
 * (`bench/go_tick_server/`, built at bench time by `bench/go_server.ts`)
 * and bare grpc-js on Node (`bench/node_server.mjs`), all ticking every
 * 10 ms; and the shapes every row uses for a server it measures.
 *
 * @module
 */

import { buildGoServer } from "./go_server.ts";
import type { Report } from "./report.ts";
import { LineProcess, scriptArgs } from "../testing/process.ts";

/** A server a row measures: the greeter or one it is compared with. */
export interface FanOutPeer {
  /** How its rows are named: `greeter`, `baseline`, `grpc-go`… */
  label: string;
  /** `host:port`. */
  target: string;
  /** Its processes, for CPU and RSS. */
  pids: number[];
  /** The greeter's metrics pages; none for the others. */
  metricsPorts?: number[];
}

/** A server the greeter is compared with, running, with its port. */
export type Peer = FanOutPeer & { port: number };

/** Starts fresh processes of one server a row measures. */
export interface PeerStarter<T extends FanOutPeer = Peer> {
  /** The label of the servers it starts. */
  label: string;
  /** Starts one; it is stopped when `stack` is disposed. */
  start(stack: AsyncDisposableStack): Promise<T>;
}

/**
 * A starter that hands out `peer`, which is running already (and is
 * stopped by whoever started it): the greeter a scenario keeps over
 * several rows.
 *
 * @example
 * ```ts
 * import { running } from "./peers.ts";
 * const starter = running({ label: "greeter", target: "127.0.0.1:50051", pids: [] });
 * console.log(starter.label); // greeter
 * ```
 */
export function running<T extends FanOutPeer>(peer: T): PeerStarter<T> {
  return { label: peer.label, start: () => Promise.resolve(peer) };
}

/** A process that prints `listening on PORT` to stderr, as a {@linkcode Peer} stopped with `stack`. */
async function listening(
  stack: AsyncDisposableStack,
  label: string,
  process: LineProcess,
): Promise<Peer> {
  stack.use(process);
  const [, port] = await process.waitForLine("stderr", /listening on (\d+)/);
  return {
    label,
    target: `127.0.0.1:${port}`,
    pids: [process.child.pid],
    port: Number(port),
  };
}

/**
 * Starters of the servers the greeter is compared with, where this machine
 * has them (the grpc-go build is removed when `stack` is disposed); a
 * missing one is reported as skipped, with what to install.
 *
 * @example
 * ```ts ignore
 * import { peerStarters } from "./peers.ts";
 * import { Report } from "./report.ts";
 * await using stack = new AsyncDisposableStack();
 * for (const starter of await peerStarters(new Report(), stack)) {
 *   await using peers = new AsyncDisposableStack();
 *   const peer = await starter.start(peers);
 *   console.log(peer.label, peer.target);
 * }
 * ```
 */
export async function peerStarters(
  report: Report,
  stack: AsyncDisposableStack,
): Promise<PeerStarter[]> {
  const starters: PeerStarter[] = [{
    label: "baseline",
    start: (peers) =>
      listening(
        peers,
        "baseline",
        new LineProcess(scriptArgs("serve", "bench/baseline_server.ts")),
      ),
  }];
  try {
    const build = stack.use(await buildGoServer());
    report.set("grpc-go version", build.version);
    starters.push({
      label: "grpc-go",
      start: async (peers) => {
        const { process, port } = await build.spawn(10);
        peers.use(process);
        return {
          label: "grpc-go",
          target: `127.0.0.1:${port}`,
          pids: [process.child.pid],
          port,
        };
      },
    });
  } catch (error) {
    report.row(
      "grpc-go",
      "skipped",
      error instanceof Error ? error.message.split("\n")[0] : `${error}`,
    );
  }
  try {
    report.set(
      "node version",
      new TextDecoder().decode(
        new Deno.Command("node", { args: ["--version"] }).outputSync().stdout,
      ).trim(),
    );
    starters.push({
      label: "grpc-js on Node",
      start: (peers) =>
        listening(
          peers,
          "grpc-js on Node",
          new LineProcess(["bench/node_server.mjs", "10"], {
            command: "node",
          }),
        ),
    });
  } catch (error) {
    report.row(
      "grpc-js on Node",
      "skipped",
      `node is not installed (${
        error instanceof Error ? error.message.split("\n")[0] : error
      })`,
    );
  }
  return starters;
}
