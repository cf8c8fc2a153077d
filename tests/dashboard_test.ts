// The dashboards operators plug in, against a real Prometheus (Debian's)
// scraping a greeter started as a person starts it (`deno task serve`, on
// a real nats-server's stream) under a little load: every panel query of
// the repository's Grafana dashboard (deploy/grafana/greeter.json), and of
// two public gRPC dashboard libraries (tests/data/grpc_dashboards.json),
// returns data.

import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { freePort, spawnServer } from "../testing/process.ts";
import { natsServerMissing, startNatsServer } from "../testing/nats.ts";
import { PROMETHEUS, startPrometheus } from "../testing/prometheus.ts";
import { waitFor } from "../testing/server.ts";

const ignore = !PROMETHEUS || natsServerMissing() !== undefined;
if (!PROMETHEUS) {
  console.warn(
    "dashboard tests ignored: prometheus is not installed (apt-get install prometheus)",
  );
} else if (ignore) {
  console.warn(`dashboard tests ignored: ${natsServerMissing()}`);
}

/** The Prometheus job the greeter is scraped as. */
const JOB = "greeter";

/**
 * What Grafana would fill in: the dashboards' variables, with windows that
 * hold the few seconds of load (scraped every second).
 */
const VARIABLES: Record<string, string> = {
  "$__rate_interval": "30s",
  "$interval": "30s",
  "$job": JOB,
  "$instance": ".*",
  "$selector": `job="${JOB}"`,
};

/** `expr` with the dashboards' variables filled in. */
function filled(expr: string): string {
  let out = expr;
  // Longest first: $interval is in $__rate_interval.
  for (
    const name of Object.keys(VARIABLES).sort((a, b) => b.length - a.length)
  ) out = out.replaceAll(name, VARIABLES[name]);
  assert.ok(!out.includes("$"), `a variable is left in ${out}`);
  return out;
}

interface PanelQuery {
  /** Where it comes from: dashboard and panel. */
  where: string;
  expr: string;
}

/** Every target of every panel of the repository's dashboard. */
async function ownQueries(): Promise<PanelQuery[]> {
  const dashboard = JSON.parse(
    await Deno.readTextFile(
      new URL("../deploy/grafana/greeter.json", import.meta.url),
    ),
  ) as {
    panels: {
      type: string;
      title: string;
      targets?: { expr: string; legendFormat?: string }[];
    }[];
  };
  const panels = dashboard.panels.filter((panel) => panel.type !== "row");
  assert.ok(panels.length >= 10);
  return panels.flatMap((panel) => {
    assert.ok(panel.targets?.length, `panel "${panel.title}" has no query`);
    return panel.targets.map((target) => ({
      where: `greeter.json "${panel.title}" ${target.legendFormat ?? ""}`,
      expr: target.expr,
    }));
  });
}

/** The public dashboards' panel queries, kept as test data. */
async function publicQueries(): Promise<PanelQuery[]> {
  const data = JSON.parse(
    await Deno.readTextFile(
      new URL("./data/grpc_dashboards.json", import.meta.url),
    ),
  ) as {
    dashboards: { source: string; panels: { panel: string; expr: string }[] }[];
  };
  return data.dashboards.flatMap(({ source, panels }) =>
    panels.map(({ panel, expr }) => ({
      where: `${source.split(",")[0]} "${panel}"`,
      expr,
    }))
  );
}

/**
 * A little of everything for about `ms`: unary calls (some refused),
 * publishes, subscribers reading them, streams that end, a bidi call.
 * Resolves with how many `SayHello` calls succeeded.
 */
async function load(target: string, ms: number): Promise<number> {
  using client = new GreeterClient(target);
  const until = Date.now() + ms;
  let hellos = 0;
  const readers = [0, 1, 2].map(async (i) => {
    // Each reads a few events, then leaves: server streams that end.
    while (Date.now() < until) {
      const stream = client.subscribe(`reader${i}`, { topics: ["news"] });
      let events = 0;
      for await (const item of stream) {
        if (item.kind === "event" && ++events === 5) break;
      }
    }
  });
  const ticks = (async () => {
    while (Date.now() < until) {
      for await (const _ of client.streamReply("ticker")) break;
    }
  })();
  for (let i = 0; Date.now() < until; i++) {
    await client.publish("news", new TextEncoder().encode(`event ${i}`));
    await client.sayHello(`caller ${i}`);
    hellos++;
    if (i % 5 === 0) await client.sayHello("").catch(() => {}); // refused
    if (i % 20 === 0) { for await (const _ of client.bidi(["a", "b"])); }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // The readers' last subscriptions end at their next events.
  for (let i = 0; i < 5; i++) {
    await client.publish("news", new TextEncoder().encode("last"));
  }
  await Promise.all([...readers, ticks]);
  return hellos;
}

Deno.test({
  name:
    "every panel query of deploy/grafana/greeter.json, of Thanos' gRPC mixin and of grpc-jsonnet-lib's server dashboard returns data from a real Prometheus scraping deno task serve under load",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    // Prometheus first: it scrapes a new target only after about 5 s.
    const metricsPort = freePort();
    await using prometheus = await startPrometheus(
      [`127.0.0.1:${metricsPort}`],
      JOB,
    );
    const server = await spawnServer(
      [
        "--broker",
        nats.url,
        "--metrics-port",
        String(metricsPort),
        "--interval",
        "200",
      ],
      undefined,
      true,
    );
    await using _server = server.process;
    await waitFor(
      "the first scrape",
      async () => (await prometheus.query(`up{job="${JOB}"}`))[0]?.value === 1,
      15_000,
    );
    const hellos = await load(server.target, 4_000);
    // Scraped after the load: what it did is all in Prometheus.
    await waitFor(
      "Prometheus to have the load's last call",
      async () =>
        (await prometheus.query(
          `grpc_server_handled_total{job="${JOB}",grpc_method="SayHello",grpc_code="OK"}`,
        ))[0]?.value === hellos,
      10_000,
    );
    const queries = [...await ownQueries(), ...await publicQueries()];
    const empty: string[] = [];
    for (const { where, expr } of queries) {
      const samples = await prometheus.query(filled(expr));
      if (!samples.some(({ value }) => Number.isFinite(value))) {
        empty.push(`${where}: ${filled(expr)} -> ${JSON.stringify(samples)}`);
      }
    }
    assert.deepEqual(empty, [], "queries without data");
    assert.ok(queries.length >= 40, `only ${queries.length} queries`);
  },
});
