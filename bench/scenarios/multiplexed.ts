/**
 * `BENCH_ONLY=multiplexed`: the shape, `BENCH_MULTIPLEXED_SUBSCRIBERS`
 * (5,000) tick subscribers over `BENCH_MULTIPLEXED_CONNECTIONS` (8), as a
 * gateway's few channels would carry them, at a 10 ms tick, against a
 * fresh greeter (its defaults but the bench's) and a fresh process of each
 * server it is compared with, so that RSS per subscriber starts clean.
 *
 * @module
 */

import type { Scenario } from "../bench.ts";
import { envNumber } from "../settings.ts";
import { tickRow } from "./tick.ts";

/** Subscribers of the multiplexed shape (`BENCH_MULTIPLEXED_SUBSCRIBERS`). */
export const MULTIPLEXED: number = envNumber(
  "BENCH_MULTIPLEXED_SUBSCRIBERS",
  5000,
);
/** Connections they share (`BENCH_MULTIPLEXED_CONNECTIONS`). */
export const MULTIPLEXED_CONNECTIONS: number = envNumber(
  "BENCH_MULTIPLEXED_CONNECTIONS",
  8,
);

/** The multiplexed section. */
export const multiplexedScenario: Scenario = {
  name: "multiplexed",
  run: (bench) =>
    tickRow(bench, {
      subscribers: MULTIPLEXED,
      connections: MULTIPLEXED_CONNECTIONS,
    }),
};
