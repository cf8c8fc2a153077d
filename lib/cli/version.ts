/**
 * The version the command line prints: the project's, from `deno.json`,
 * and the Deno that runs it (the server depends on its exact version).
 *
 * @module
 */

import { BUILD } from "../build.ts";

/**
 * `greeter VERSION (deno VERSION)`.
 *
 * @example
 * ```ts
 * import { versionLine } from "./version.ts";
 * versionLine(); // e.g. "greeter 0.1.0 (deno 2.9.3)"
 * ```
 */
export function versionLine(): string {
  return `greeter ${BUILD.version} (deno ${BUILD.deno})`;
}
