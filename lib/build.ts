/**
 * What this build is: the project's version and the grpc-js it pins, both
 * from `deno.json` (the command line's `--version`, the metrics'
 * `greeter_build_info`).
 *
 * @module
 */

import project from "../deno.json" with { type: "json" };

/** The build's versions. */
export interface Build {
  /** The project's, from `deno.json`. */
  readonly version: string;
  /** The Deno that runs it. */
  readonly deno: string;
  /** The grpc-js `deno.json` pins (`npm:@grpc/grpc-js@VERSION`). */
  readonly grpcJs: string;
}

/**
 * This build's versions.
 *
 * @example
 * ```ts
 * import { BUILD } from "./build.ts";
 * BUILD.version; // e.g. "0.1.0"
 * ```
 */
export const BUILD: Build = {
  version: project.version,
  deno: Deno.version.deno,
  grpcJs: project.imports["@grpc/grpc-js"].replace(/^npm:@grpc\/grpc-js@/, ""),
};
