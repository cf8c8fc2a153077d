/**
 * `deno task bench`: starts the real server as users run it and measures
 * unary throughput, the clock tick's fan-out, broadcast fan-out at 1,000 /
 * 5,000 / 10,000 subscribers with delivery latency, subscribe rate, memory
 * per idle subscriber at 20,000, the time from subscribers' death to their
 * removal, and memory under stalled subscribers; each against a bare grpc-js
 * server where one applies. With nats-server installed, also several
 * instances on one NATS JetStream stream against the memory broker:
 * publish-to-delivery across two instances, resume from a fresh instance,
 * and two `--reuse-port` processes against one. One process over 1, 2 and
 * `auto` workers (`--workers`). Prints a table, then the
 * same figures as one JSON line. Figures, never assertions: tests do not
 * time anything.
 *
 * This module only dispatches: each section is a {@linkcode Scenario} in
 * `bench/scenarios/`, run in the order of {@linkcode SCENARIOS} when
 * `BENCH_ONLY` names it (all but the long ones when it is not set). A new
 * section is a module there and a line here.
 *
 * @module
 */

import os from "node:os";
import { Bench, type Scenario } from "./bench.ts";
import { cpuTimes } from "./resources.ts";
import { broadcastScenario } from "./scenarios/broadcast.ts";
import { deathScenario } from "./scenarios/death.ts";
import { httpScenario } from "./scenarios/http.ts";
import { idleScenario } from "./scenarios/idle.ts";
import { instancesScenario } from "./scenarios/instances.ts";
import { multiplexedScenario } from "./scenarios/multiplexed.ts";
import { patternsScenario } from "./scenarios/patterns.ts";
import { soakScenario } from "./scenarios/soak.ts";
import { stalledScenario } from "./scenarios/stalled.ts";
import { tickScenario } from "./scenarios/tick.ts";
import { unaryScenario } from "./scenarios/unary.ts";
import { workersScenario } from "./scenarios/workers.ts";
import { ROOT } from "../testing/process.ts";

/** Every section, in the order a run takes them. */
const SCENARIOS: readonly Scenario[] = [
  unaryScenario,
  tickScenario,
  multiplexedScenario,
  broadcastScenario,
  workersScenario,
  patternsScenario,
  soakScenario,
  idleScenario,
  deathScenario,
  stalledScenario,
  instancesScenario,
  httpScenario,
];

/**
 * The sections `BENCH_ONLY` names (`BENCH_ONLY=tick,death`), in run order;
 * when it is not set, every one but those run only when named.
 */
function selected(only = Deno.env.get("BENCH_ONLY")): Scenario[] {
  if (only === undefined) {
    return SCENARIOS.filter((scenario) => !scenario.onlyWhenNamed);
  }
  const names = only.split(",");
  const known = SCENARIOS.map((scenario) => scenario.name);
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `Cannot run BENCH_ONLY="${only}": no section named ${
        unknown.map((name) => `"${name}"`).join(", ")
      }; the sections are ${known.join(", ")}`,
    );
  }
  return SCENARIOS.filter((scenario) => names.includes(scenario.name));
}

/** The machine and versions, for the header and the JSON line. */
function environment(bench: Bench) {
  const imports = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`))
    .imports;
  const env = {
    deno: Deno.version.deno,
    grpcJs: imports["@grpc/grpc-js"].replace("npm:@grpc/grpc-js@", ""),
    cpu: os.cpus()[0]?.model,
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    date: new Date().toISOString(),
  };
  bench.report.set("environment", env);
  return env;
}

async function main() {
  let scenarios;
  try {
    scenarios = selected();
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exitCode = 2;
    return;
  }
  await using bench = new Bench();
  const env = environment(bench);
  console.log(
    `greeter bench: Deno ${env.deno}, grpc-js ${env.grpcJs}, ${env.cores} x ${env.cpu}, ${env.memoryGiB} GiB\n`,
  );
  const started = performance.now();
  const cpuAtStart = cpuTimes();
  for (const scenario of scenarios) await scenario.run(bench);
  const { report } = bench;
  report.figure("bench wall time", (performance.now() - started) / 1000, "s");
  const cpuAtEnd = cpuTimes();
  report.figure(
    "CPU stolen by the hypervisor during the run",
    (100 * (cpuAtEnd.steal - cpuAtStart.steal)) /
      Math.max(1, cpuAtEnd.total - cpuAtStart.total),
    "%",
    "above a few %: figures are noisy",
  );
  report.print();
}

await main();
