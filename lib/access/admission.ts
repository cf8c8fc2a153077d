/**
 * Admission: how many hub subscriptions one connection (peer
 * `address:port`) and one peer (its remote address, over all its
 * connections) may hold at once, so that no single client takes every slot.
 *
 * @module
 */

import { CapacityError } from "../errors.ts";
import { quote } from "../escape.ts";

/** A peer's remote address: `address:port` (as grpc-js names it) less the port. */
function addressOf(peer: string): string {
  const colon = peer.lastIndexOf(":");
  return colon > 0 && /^\d+$/.test(peer.slice(colon + 1))
    ? peer.slice(0, colon)
    : peer;
}

/** Adds `delta` to `key`'s count, forgetting it at 0. */
function add(counts: Map<string, number>, key: string, delta: number): void {
  const count = (counts.get(key) ?? 0) + delta;
  if (count === 0) counts.delete(key);
  else counts.set(key, count);
}

/**
 * Counts live subscriptions per connection and per peer address, and
 * refuses one over either limit.
 *
 * @example
 * ```ts
 * import { Admission } from "./admission.ts";
 * const admission = new Admission({ perConnection: 1, perPeer: 2 });
 * const release = admission.admit("127.0.0.1:5000", "ann");
 * // admission.admit("127.0.0.1:5000", "bob") throws a CapacityError
 * release();
 * ```
 */
export class Admission {
  #perConnection: number;
  #perPeer: number;
  /** Live subscriptions per connection (peer address:port). */
  #byConnection = new Map<string, number>();
  /** Live subscriptions per peer address. */
  #byAddress = new Map<string, number>();

  /** Admits at most `perConnection` subscriptions per connection and `perPeer` per address (default: no limit). */
  constructor(options: { perConnection?: number; perPeer?: number } = {}) {
    this.#perConnection = options.perConnection ?? Infinity;
    this.#perPeer = options.perPeer ?? Infinity;
  }

  /**
   * Counts a subscription of `name` against its connection (`peer`, as
   * grpc-js's `getPeer()` names it) and its address; throws a
   * {@linkcode CapacityError} naming the limit when either is full. The
   * returned function uncounts it.
   */
  admit(peer: string, name: string): () => void {
    const byConnection = this.#byConnection;
    const byAddress = this.#byAddress;
    const count = byConnection.get(peer) ?? 0;
    if (count >= this.#perConnection) {
      throw new CapacityError(
        `Cannot subscribe ${
          quote(name)
        }: this connection holds ${count} subscriptions, the limit; open another connection or close one`,
      );
    }
    const address = addressOf(peer);
    const fromAddress = byAddress.get(address) ?? 0;
    if (fromAddress >= this.#perPeer) {
      throw new CapacityError(
        `Cannot subscribe ${
          quote(name)
        }: peer ${address} holds ${fromAddress} subscriptions, the per-peer limit of ${this.#perPeer} (--max-subscribers-per-peer); close some first`,
      );
    }
    add(byConnection, peer, 1);
    add(byAddress, address, 1);
    return () => {
      add(byConnection, peer, -1);
      add(byAddress, address, -1);
    };
  }
}
