/**
 * Per-connection admission: how many hub subscriptions one connection
 * (peer `address:port`) may hold at once.
 *
 * @module
 */

import { CapacityError } from "../errors.ts";

/**
 * Counts live subscriptions per connection and refuses one over the limit.
 *
 * @example
 * ```ts
 * import { Admission } from "./admission.ts";
 * const admission = new Admission({ perConnection: 1 });
 * const release = admission.admit("127.0.0.1:5000", "ann");
 * // admission.admit("127.0.0.1:5000", "bob") throws a CapacityError
 * release();
 * ```
 */
export class Admission {
  #perConnection: number;
  /** Live subscriptions per connection (peer address:port). */
  #byConnection = new Map<string, number>();

  /** Admits at most `perConnection` subscriptions per connection (default: no limit). */
  constructor(options: { perConnection?: number } = {}) {
    this.#perConnection = options.perConnection ?? Infinity;
  }

  /**
   * Counts a subscription of `name` against its connection (`peer`);
   * throws a {@linkcode CapacityError} naming the limit when it is full.
   * The returned function uncounts it.
   */
  admit(peer: string, name: string): () => void {
    const byConnection = this.#byConnection;
    const count = byConnection.get(peer) ?? 0;
    if (count >= this.#perConnection) {
      throw new CapacityError(
        `Cannot subscribe "${name}": this connection holds ${count} subscriptions, the limit; open another connection or close one`,
      );
    }
    byConnection.set(peer, count + 1);
    return () => {
      const left = byConnection.get(peer)! - 1;
      if (left === 0) byConnection.delete(peer);
      else byConnection.set(peer, left);
    };
  }
}
