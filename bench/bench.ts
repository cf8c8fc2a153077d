/**
 * One bench run as its scenarios see it: where figures go, the greeters it
 * started (to say which died on their own when a row fails), and the
 * servers the greeter is compared with, prepared once per run. And what a
 * scenario is: a name for `BENCH_ONLY` and a function that reports.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import { type FanOutPeer, type PeerStarter, peerStarters } from "./peers.ts";
import { Report } from "./report.ts";
import { type LineProcess, spawnServer } from "../testing/process.ts";

/**
 * One section of the bench, run when `BENCH_ONLY` names it (or, unless it
 * runs only when named, when `BENCH_ONLY` is not set).
 *
 * @example
 * ```ts
 * import type { Scenario } from "./bench.ts";
 * export const hello: Scenario = {
 *   name: "hello",
 *   run: (bench) => Promise.resolve(bench.report.figure("answer", 42, "x")),
 * };
 * ```
 */
export interface Scenario {
  /** Its name in `BENCH_ONLY`. */
  readonly name: string;
  /** Runs only when `BENCH_ONLY` names it: it is long. */
  readonly onlyWhenNamed?: boolean;
  /** Measures, reporting to `bench.report`; stops every process it started. */
  run(bench: Bench): Promise<void>;
}

/** A greeter the bench started ({@linkcode Bench.spawnGreeter}). */
export interface Greeter {
  process: LineProcess;
  target: string;
  port: number;
  /** Its metrics page's port. */
  metricsPort: number;
}

/**
 * `greeter` as a row measures it.
 *
 * @example
 * ```ts ignore
 * import { Bench, greeterPeer } from "./bench.ts";
 * await using bench = new Bench();
 * const greeter = await bench.spawnGreeter(["--interval", "10"]);
 * await using _ = greeter.process;
 * console.log(greeterPeer(greeter).pids);
 * ```
 */
export function greeterPeer(greeter: Greeter): FanOutPeer {
  return {
    label: "greeter",
    target: greeter.target,
    pids: [greeter.process.child.pid],
    metricsPorts: [greeter.metricsPort],
  };
}

/**
 * What the scenarios of one run share; disposing of it removes what it
 * prepared (the grpc-go build).
 *
 * @example
 * ```ts ignore
 * import { Bench } from "./bench.ts";
 * await using bench = new Bench();
 * const greeter = await bench.spawnGreeter(["--interval", "10"]);
 * await using _ = greeter.process;
 * bench.report.print();
 * ```
 */
export class Bench implements AsyncDisposable {
  /** Where the run's figures go. */
  readonly report: Report = new Report();
  #greeters: LineProcess[] = [];
  #stack = new AsyncDisposableStack();
  #peers?: Promise<PeerStarter[]>;

  /**
   * Starts the greeter as users run it (the `serve` task) with `args`,
   * metrics on, and every subscriber allowed from one peer (every pool
   * connects from 127.0.0.1). Dispose of its process to stop it.
   */
  async spawnGreeter(args: string[]): Promise<Greeter> {
    const spawned = await spawnServer([
      ...args,
      "--metrics-port",
      "0",
      "--max-subscribers-per-peer",
      "10000000",
    ]);
    this.#greeters.push(spawned.process);
    try {
      const [, metricsPort] = await spawned.process.waitForLine(
        "stderr",
        /Metrics on http:\/\/\S+:(\d+)\/metrics/,
      );
      return { ...spawned, metricsPort: Number(metricsPort) };
    } catch (error) {
      await spawned.process[Symbol.asyncDispose]();
      throw error;
    }
  }

  /**
   * Greeters that ended other than by the bench's SIGKILL (which every
   * disposal sends), with their last log lines: what to look at when a
   * row fails.
   */
  async diedOnTheirOwn(): Promise<string[]> {
    const found = [];
    for (const server of this.#greeters) {
      const status = await Promise.race([server.child.status, delay(100)]);
      if (status && status.signal !== "SIGKILL") {
        found.push(
          `server ${server.child.pid} ended with code ${status.code} (signal ${status.signal}):\n${
            server.stderr.slice(-20).join("\n")
          }`,
        );
      }
    }
    return found;
  }

  /**
   * Starters of the servers the greeter is compared with, prepared at the
   * first call (building grpc-go takes ~10 s) and kept for the run.
   */
  peers(): Promise<PeerStarter[]> {
    this.#peers ??= peerStarters(this.report, this.#stack);
    return this.#peers;
  }

  /** Removes what {@linkcode Bench.peers} prepared. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stack.disposeAsync();
  }
}
