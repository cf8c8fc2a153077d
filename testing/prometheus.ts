/**
 * A real Prometheus for tests: Debian's `prometheus` (and `promtool`),
 * scraping given targets every second, its store in a temporary directory,
 * queried over its HTTP API.
 *
 * @module
 */

import { freePort, LineProcess } from "./process.ts";
import { waitFor } from "./server.ts";

/** The first of `paths` that is a file, if any. */
function installed(paths: string[]): string | undefined {
  return paths.find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}

/** `promtool`, or undefined when it is not installed (`apt-get install prometheus`). */
export const PROMTOOL: string | undefined = installed([
  "/usr/bin/promtool",
  "/usr/local/bin/promtool",
]);

/** `prometheus`, or undefined when it is not installed (`apt-get install prometheus`). */
export const PROMETHEUS: string | undefined = installed([
  "/usr/bin/prometheus",
  "/usr/local/bin/prometheus",
]);

/** One series of an instant query's answer. */
export interface Sample {
  /** Its labels. */
  metric: Record<string, string>;
  /** Its value (`NaN` and infinities as Prometheus sends them). */
  value: number;
}

/** A running Prometheus; dispose of it to stop it and remove its store. */
export interface Prometheus extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Evaluates `expr` now; rejects with Prometheus' error if it refuses it. */
  query(expr: string): Promise<Sample[]>;
}

/**
 * Starts Prometheus scraping `targets` (`HOST:PORT`, path `/metrics`) as job
 * `job` every second, and resolves once it is ready. (Its first scrape
 * comes about 5 s later: Prometheus hands new targets to its scrapers at
 * most every 5 s. Start it before what it scrapes.)
 *
 * @example
 * ```ts ignore
 * await using prometheus = await startPrometheus(["127.0.0.1:9464"], "greeter");
 * await prometheus.query("up");
 * ```
 */
export async function startPrometheus(
  targets: string[],
  job: string,
): Promise<Prometheus> {
  if (!PROMETHEUS) {
    throw new Error("prometheus is not installed (apt-get install prometheus)");
  }
  const dir = await Deno.makeTempDir({ prefix: "greeter-prometheus-" });
  const config = `${dir}/prometheus.yml`;
  await Deno.writeTextFile(
    config,
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      `  - job_name: ${JSON.stringify(job)}`,
      "    static_configs:",
      `      - targets: ${JSON.stringify(targets)}`,
      "",
    ].join("\n"),
  );
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const process = new LineProcess([
    `--config.file=${config}`,
    `--storage.tsdb.path=${dir}/data`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--log.level=warn",
  ], { command: PROMETHEUS });
  const stop = async () => {
    await process[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await waitFor(
      "Prometheus to be ready",
      async () => {
        try {
          const response = await fetch(`${url}/-/ready`);
          await response.body?.cancel();
          return response.ok;
        } catch {
          return false; // not listening yet
        }
      },
      20_000,
      () => process.stderr.join("\n"),
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    async query(expr) {
      const response = await fetch(
        `${url}/api/v1/query?${new URLSearchParams({ query: expr })}`,
      );
      const body = await response.json() as {
        status: string;
        error?: string;
        data?: {
          resultType: string;
          result: { metric: Record<string, string>; value: [number, string] }[];
        };
      };
      if (body.status !== "success" || body.data?.resultType !== "vector") {
        throw new Error(
          `Prometheus refused ${expr}: ${body.error ?? body.data?.resultType}`,
        );
      }
      return body.data.result.map(({ metric, value }) => ({
        metric,
        value: Number(value[1]),
      }));
    },
    [Symbol.asyncDispose]: stop,
  };
}
