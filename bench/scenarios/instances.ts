/**
 * `BENCH_ONLY=instances`: several greeters on one NATS JetStream stream
 * against the memory broker, where nats-server is installed (skipped with a
 * note where not): publish-to-delivery across two instances, resume from a
 * fresh instance, and two `--reuse-port` processes against one. A part
 * that fails says why and lets the others run.
 *
 * @module
 */

import type { Bench, Scenario } from "../bench.ts";
import { natsServerMissing } from "../../testing/nats.ts";
import { instancesDelivery } from "./instances/delivery.ts";
import { instancesResume } from "./instances/resume.ts";
import { instancesReusePort } from "./instances/reuse_port.ts";

/** The parts, in the order they run. */
const PARTS = [instancesDelivery, instancesResume, instancesReusePort];

async function run(bench: Bench): Promise<void> {
  const missing = natsServerMissing();
  if (missing) {
    bench.report.row("instances", "skipped", missing);
    return;
  }
  for (const part of PARTS) {
    try {
      await part(bench);
    } catch (error) {
      bench.report.row(part.name, "failed", String(error));
      console.error(`${part.name} failed:`, error);
      for (const died of await bench.diedOnTheirOwn()) console.error(died);
    }
  }
}

/** The instances section. */
export const instancesScenario: Scenario = { name: "instances", run };
