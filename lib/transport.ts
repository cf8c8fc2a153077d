/**
 * The seam between the server's core (`lib/server/`) and each transport
 * (`lib/grpc/` today, an HTTP one beside it): what the core hands a
 * transport, and what the drain asks of it. Types only, so that no
 * transport imports the core or another transport.
 *
 * @module
 */

import type { Admission } from "./access/admission.ts";
import type { Directory } from "./bus/broker.ts";
import type { Hub } from "./bus/hub.ts";
import type { SubscriptionInfo } from "./bus/hub_items.ts";
import type { PeerLineBudget } from "./observe/peer_lines.ts";
import type { RpcMetrics } from "./observe/rpc_metrics.ts";
import type { ConnectionStats } from "./observe/server_metrics.ts";
import type { Slots } from "./bus/slots.ts";

/** What the server's core shares with every transport. */
export interface TransportCore {
  /** The event bus behind `Subscribe`, `Publish` and `SayHelloStreamReply`. */
  hub: Hub<Uint8Array>;
  /** Every instance's subscriptions, on a shared stream; the hub's otherwise. */
  directory: Directory<SubscriptionInfo> | undefined;
  /** The budget of join, leave and disconnect lines per peer. */
  peerLines: PeerLineBudget;
  /** Subscriptions per connection and per peer, counted over every transport. */
  admission: Admission;
  /**
   * Each peer's share of connections, over every transport
   * (`--max-connections-per-peer`): a transport takes one per connection it
   * accepts, and closes a connection refused one.
   */
  connectionShares: Slots;
  /**
   * Where the connection limit is counted, when not by each listener alone
   * (a process's workers count theirs together): `take` says whether there
   * was room (and takes it), `give` hands it back.
   */
  connectionSlots?: { take(): boolean; give(): void };
  /**
   * Health watches with a share per peer, when not counted by each
   * transport alone (a process's workers count theirs together).
   */
  healthWatches?: Slots;
  /** Aborts when the drain starts. */
  draining: AbortSignal;
  /** Aborts when the grace runs out: every call stops. */
  stopped: AbortSignal;
  /**
   * The calls' families: a transport registers the methods it serves, and
   * reports its calls and deliveries through its own recorder
   * (`rpc.recorder(TRANSPORT)`).
   */
  rpc: RpcMetrics;
  /** Shows a transport's connections in the metrics, read at each scrape. */
  connections(transport: string, stats: ConnectionStats): void;
}

/** A running transport, as the core starts, drains and stops it. */
export interface Transport {
  /** The bound address, e.g. `[::]:50051`. */
  readonly address: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** The event stream's engine came or went: probes follow (until the drain). */
  serving(up: boolean): void;
  /** The drain starts: probes hear NOT_SERVING, for good. */
  drain(): void;
  /**
   * After the hub closed: ends what only waits (health watches), stops
   * accepting, and resolves once every call and connection is done.
   */
  close(): Promise<void>;
  /** The grace ran out: cancels what is left. */
  force(): void;
}
