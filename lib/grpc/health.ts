/**
 * The standard services beside the Greeter: `grpc.health.v1.Health` (Check,
 * Watch and List, `""` and `helloworld.Greeter`, with a bound on open
 * watches) and server reflection (v1 and v1alpha, describing the Greeter and
 * health). Health is served here rather than by grpc-health-check's
 * implementation: that one keys its watchers by whatever name a caller sends
 * and never deletes an emptied key, so cancelled watches on unique names
 * leaked for good (issue 13), and it caps nothing. Here open watches are
 * bounded in all and per peer (a quarter each): one tokenless peer took all
 * 1,000 (issue 19).
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { loadServedDefinition } from "../wire/proto.ts";
import { quote } from "../escape.ts";
import { PeerShares } from "../access/peer_shares.ts";
import type { Slots } from "../bus/slots.ts";

/**
 * The services health reports on: the server as a whole (`""`, what
 * Kubernetes' gRPC probe asks by default: liveness) and the Greeter
 * (readiness).
 */
export const HEALTH_SERVICES: readonly string[] = ["", "helloworld.Greeter"];

/** The service that follows the server's dependencies: readiness. */
export const READINESS_SERVICE = "helloworld.Greeter";

/**
 * Health as the server drives it: `""` says whether the process can serve
 * calls (SERVING until the drain), `helloworld.Greeter` whether the Greeter
 * can do its work (NOT_SERVING also while the event stream's engine is
 * away). A liveness probe on `""` then never restarts an instance for an
 * outage a restart cannot mend; a readiness probe on `helloworld.Greeter`
 * takes it out of the load balancer meanwhile.
 */
export interface ServedHealth {
  /** Reports `NOT_SERVING` for every service (open watches are told); final. */
  notServing(): void;
  /**
   * Reports the Greeter `SERVING` or `NOT_SERVING` as a dependency comes
   * and goes (the event stream's engine); `""` stays as it is. No effect
   * after `notServing()`.
   */
  serving(up: boolean): void;
  /** Ends the open `Watch` calls (after `notServing()`, so they hear it). */
  endWatches(): void;
}

/**
 * Adds health (every service `SERVING`, at most `maxWatches` open `Watch`
 * calls) and reflection to `server`.
 *
 * @example
 * ```ts ignore
 * const health = await addHealthAndReflection(server, { maxWatches: 1000 });
 * health.notServing(); // at shutdown
 * ```
 */
export async function addHealthAndReflection(
  server: Pick<grpc.Server, "addService">,
  options: HealthServiceOptions = {},
): Promise<ServedHealth> {
  // Loaded here, not at import: grpc-health-check reads its proto file when
  // imported, which a process that only imports this module (the client,
  // via config defaults) must not need permission for.
  const [{ service: definition }, { ReflectionService }] = await Promise.all([
    import("grpc-health-check"),
    import("@grpc/reflection"),
  ]);
  const health = new HealthService(HEALTH_SERVICES, options);
  server.addService(definition, health.implementation());
  new ReflectionService(loadServedDefinition()).addToServer(server);
  let stopped = false;
  const report = (status: ServingStatus) => {
    for (const name of HEALTH_SERVICES) health.setStatus(name, status);
  };
  return {
    notServing() {
      stopped = true;
      report("NOT_SERVING");
    },
    serving(up) {
      if (!stopped) {
        health.setStatus(READINESS_SERVICE, up ? "SERVING" : "NOT_SERVING");
      }
    },
    endWatches: () => health.endWatches(),
  };
}

/** A serving status as the health proto names it. */
export type ServingStatus = "SERVING" | "NOT_SERVING";

/** Options of {@linkcode HealthService}. */
export interface HealthServiceOptions {
  /** Most `Watch` calls open at once (RESOURCE_EXHAUSTED beyond). Default 1,000. */
  maxWatches?: number;
  /** Most `Watch` calls one peer (remote address) holds open. Default: a quarter of `maxWatches`. */
  maxWatchesPerPeer?: number;
  /**
   * Where the watches are counted, when not here alone (a process's
   * workers count theirs together): `maxWatches` and `maxWatchesPerPeer`
   * are its bounds then.
   */
  slots?: Slots;
}

/** Default most open `Watch` calls. */
export const DEFAULT_MAX_HEALTH_WATCHES = 1_000;

type WatchCall = grpc.ServerWritableStream<{ service: string }, unknown>;

/**
 * Health of a fixed set of services. `Watch` on a name outside that set is
 * answered `SERVICE_UNKNOWN` (the call stays open, as the health protocol
 * asks, and counts against the bound) without the name being stored: the
 * set never grows, so an unknown name never becomes known.
 *
 * @example
 * ```ts ignore
 * const health = new HealthService(["", "helloworld.Greeter"]);
 * server.addService(healthDefinition, health.implementation());
 * health.setStatus("", "NOT_SERVING");
 * health.endWatches();
 * ```
 */
export class HealthService {
  #status = new Map<string, ServingStatus>();
  /** Open watches of known services, by name (the keys never change). */
  #watchers = new Map<string, Set<WatchCall>>();
  /** Open watches of unknown names: only the calls, never the names. */
  #unknown = new Set<WatchCall>();
  /** The watches' slots, in all and per peer. */
  #slots: Slots;

  /** Reports every one of `services` SERVING. */
  constructor(
    services: readonly string[],
    options: HealthServiceOptions = {},
  ) {
    for (const name of services) {
      this.#status.set(name, "SERVING");
      this.#watchers.set(name, new Set());
    }
    this.#slots = options.slots ?? new PeerShares({
      total: options.maxWatches ?? DEFAULT_MAX_HEALTH_WATCHES,
      perPeer: options.maxWatchesPerPeer,
      what: "health watches",
    });
  }

  /** Open `Watch` calls now. */
  get watching(): number {
    let open = this.#unknown.size;
    for (const set of this.#watchers.values()) open += set.size;
    return open;
  }

  /** Sets a known service's status and tells its watchers; unknown names are ignored. */
  setStatus(service: string, status: ServingStatus): void {
    if (!this.#status.has(service)) return;
    this.#status.set(service, status);
    for (const call of this.#watchers.get(service)!) call.write({ status });
  }

  /** Ends every open watch with OK (after the last status written). */
  endWatches(): void {
    for (const call of this.#unknown) call.end();
    this.#unknown.clear();
    for (const set of this.#watchers.values()) {
      for (const call of set) call.end();
      set.clear();
    }
  }

  /** The handlers, for `grpc.Server.addService` with the health definition. */
  implementation(): grpc.UntypedServiceImplementation {
    return {
      check: (
        call: grpc.ServerUnaryCall<{ service: string }, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        const status = this.#status.get(call.request.service);
        if (status) callback(null, { status });
        else {
          callback({
            code: grpc.status.NOT_FOUND,
            details: `Health status unknown for service ${
              quote(call.request.service.slice(0, 256))
            }: known are ${
              [...this.#status.keys()].map((name) => `"${name}"`).join(", ")
            }`,
          });
        }
      },
      watch: (call: WatchCall) => this.#watch(call),
      list: (
        _call: grpc.ServerUnaryCall<unknown, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        const statuses: Record<string, { status: ServingStatus }> = {};
        for (const [name, status] of this.#status) statuses[name] = { status };
        callback(null, { statuses });
      },
    };
  }

  #watch(call: WatchCall): void {
    const slot = this.#slots.take(call.getPeer());
    if (slot.refused !== undefined) {
      call.emit("error", {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details:
          `Cannot watch health: ${slot.refused}; use Check, or retry later`,
      });
      return;
    }
    const status = this.#status.get(call.request.service);
    const set = status
      ? this.#watchers.get(call.request.service)!
      : this.#unknown;
    set.add(call);
    const forget = () => {
      set.delete(call);
      slot.release();
    };
    call.once("cancelled", forget);
    call.once("close", forget);
    call.once("finish", forget);
    call.write({ status: status ?? "SERVICE_UNKNOWN" });
  }
}
