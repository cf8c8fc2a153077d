/**
 * The standard services beside the Greeter: `grpc.health.v1.Health` (Check
 * and Watch, `""` and `helloworld.Greeter`) and server reflection (v1 and
 * v1alpha, describing the Greeter and health).
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import { loadServedDefinition } from "./proto.ts";

/** The services health reports on: the server as a whole ("") and the Greeter. */
export const HEALTH_SERVICES: readonly string[] = ["", "helloworld.Greeter"];

/** Health as the server's shutdown drives it. */
export interface ServedHealth {
  /** Reports `NOT_SERVING` for every service (open watches are told). */
  notServing(): void;
  /** Ends the open `Watch` calls (after `notServing()`, so they hear it). */
  endWatches(): void;
}

/**
 * Adds health (every service `SERVING`) and reflection to `server`.
 *
 * @example
 * ```ts ignore
 * const health = await addHealthAndReflection(server);
 * health.notServing(); // at shutdown
 * ```
 */
export async function addHealthAndReflection(
  server: grpc.Server,
): Promise<ServedHealth> {
  // Loaded here, not at import: grpc-health-check reads its proto file when
  // imported, which a process that only imports this module (the client,
  // via config defaults) must not need permission for.
  const [{ HealthImplementation }, { ReflectionService }] = await Promise.all([
    import("grpc-health-check"),
    import("@grpc/reflection"),
  ]);
  const health = new HealthImplementation(
    Object.fromEntries(HEALTH_SERVICES.map((name) => [name, "SERVING"])),
  );
  /** Open Health.Watch calls: a drain ends them, or they would hold the shutdown. */
  const watches = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  health.addToServer({
    addService(definition, implementation) {
      const { watch } = implementation as {
        watch: (call: grpc.ServerWritableStream<unknown, unknown>) => void;
      };
      server.addService(definition, {
        ...implementation,
        watch(call: grpc.ServerWritableStream<unknown, unknown>) {
          watches.add(call);
          call.once("close", () => watches.delete(call));
          call.once("cancelled", () => watches.delete(call));
          watch(call);
        },
      });
    },
  } as grpc.Server);
  new ReflectionService(loadServedDefinition()).addToServer(server);
  return {
    notServing() {
      for (const name of HEALTH_SERVICES) {
        health.setStatus(name, "NOT_SERVING");
      }
    },
    endWatches() {
      for (const call of watches) call.end();
      watches.clear();
    },
  };
}
