/**
 * The settings every scenario shares, read from the environment once
 * (`BENCH_SECONDS`, `BENCH_PUBLISH_MS`); a scenario's own settings live in
 * its module. `bench/README.md` lists them all with their defaults.
 *
 * @module
 */

/**
 * The number in the environment variable `name`, or `fallback` when it is
 * not set.
 *
 * @example
 * ```ts
 * import { envNumber } from "./settings.ts";
 * const subscribers = envNumber("BENCH_SUBSCRIBERS", 1000);
 * ```
 */
export function envNumber(name: string, fallback: number): number {
  const value = Number(Deno.env.get(name) ?? fallback);
  if (!Number.isFinite(value)) {
    throw new Error(
      `Cannot read ${name}="${Deno.env.get(name)}": expected a number`,
    );
  }
  return value;
}

/**
 * The comma-separated list in the environment variable `name`, or
 * `fallback` when it is not set.
 *
 * @example
 * ```ts
 * import { envList } from "./settings.ts";
 * const paces = envList("BENCH_INSTANCE_PACES", "rate=1000,max=32");
 * ```
 */
export function envList(name: string, fallback: string): string[] {
  return (Deno.env.get(name) ?? fallback).split(",");
}

/** Seconds of each measured window (`BENCH_SECONDS`). */
export const SECONDS: number = envNumber("BENCH_SECONDS", 4);
/** Milliseconds a fan-out runs before it is measured: the queues that fill at its start have settled. */
export const WARM_UP_MS = 2000;
/** Milliseconds between two broadcast publishes (`BENCH_PUBLISH_MS`). */
export const PUBLISH_MS: number = envNumber("BENCH_PUBLISH_MS", 10);
/** Subscriptions per connection the generator opens. */
export const PER_CONNECTION = 100;

/**
 * Connections for `n` subscriptions at {@linkcode PER_CONNECTION} each.
 *
 * @example
 * ```ts
 * import { connectionsFor } from "./settings.ts";
 * console.log(connectionsFor(1000)); // 10
 * ```
 */
export const connectionsFor = (n: number): number =>
  Math.max(1, Math.ceil(n / PER_CONNECTION));
