/**
 * What the greeters of the instances section share: how many events a
 * resume reads back, and the flags that make room for them.
 *
 * @module
 */

import { envNumber } from "../../settings.ts";

/** Events a resume reads back (`BENCH_RESUME_EVENTS`). */
export const RESUME_EVENTS: number = envNumber("BENCH_RESUME_EVENTS", 10_000);

/**
 * Flags of every greeter in the instances section: no clock traffic, a
 * replay window that holds a resume.
 *
 * @example
 * ```ts
 * import { instanceFlags } from "./flags.ts";
 * console.log(["serve", ...instanceFlags()].join(" "));
 * ```
 */
export const instanceFlags = (): string[] => [
  "--interval",
  "3600000",
  "--replay-size",
  String(Math.max(2 * RESUME_EVENTS, 10_000)),
];
