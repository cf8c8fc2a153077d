/**
 * Shares per peer of a bounded pool (connections, health watches, metrics
 * connections, deep resumes): no peer (remote address, all its ports) may
 * hold more than its share, so that one stranger cannot take every slot and
 * keep everyone else out. Transport-neutral: each transport takes a slot
 * where its pool is, and releases it when that ends.
 *
 * @module
 */

import type { Slots, SlotTake } from "../bus/slots.ts";
import { peerHost } from "../wire/address.ts";
import { LocalTally, type Tally } from "./tally.ts";

/**
 * A peer's default share of a pool of `total`: a quarter (at least 1), as
 * for subscriptions: one peer cannot take every slot, one gateway still
 * gets many.
 *
 * @example
 * ```ts
 * import { shareOf } from "./peer_shares.ts";
 * shareOf(64); // 16
 * ```
 */
export function shareOf(total: number): number {
  return Math.max(1, Math.ceil(total / 4));
}

/** Options of {@linkcode PeerShares}. */
export interface PeerSharesOptions {
  /** Most slots held at once, by everyone. Default: no bound. */
  total?: number;
  /** Most slots one peer (remote address) holds at once. Default {@linkcode shareOf} `total`. */
  perPeer?: number;
  /** What the slots are, for refusals: `"health watches"`. */
  what: string;
  /**
   * Where the slots are counted (under `what`, and `what HOST`): here
   * alone by default; a process's workers share one, so that the pool and
   * each peer's share are the process's.
   */
  tally?: Tally;
}

/**
 * A pool of slots with a share per peer: {@linkcode PeerShares.take} says
 * which bound refused, naming the peer and the numbers.
 *
 * @example
 * ```ts
 * import { PeerShares } from "./peer_shares.ts";
 * const watches = new PeerShares({ total: 8, perPeer: 2, what: "watches" });
 * const taken = watches.take("10.0.0.1:5000");
 * watches.take("10.0.0.1:5001");
 * watches.take("10.0.0.1:5002").refused; // "10.0.0.1 holds 2 watches, its share of 2"
 * taken.release?.();
 * watches.heldBy("10.0.0.1:9"); // 1
 * ```
 */
export class PeerShares implements Slots {
  readonly total: number;
  readonly perPeer: number;
  #what: string;
  #tally: Tally;

  /** An empty pool (or the one `options.tally` counts). */
  constructor(options: PeerSharesOptions) {
    this.total = options.total ?? Infinity;
    this.perPeer = options.perPeer ?? shareOf(this.total);
    this.#what = options.what;
    this.#tally = options.tally ?? new LocalTally();
  }

  /** Slots held now. */
  get held(): number {
    return this.#tally.count(this.#what);
  }

  /** Slots `peer`'s address holds now. */
  heldBy(peer: string): number {
    return this.#tally.count(`${this.#what} ${peerHost(peer)}`);
  }

  /**
   * Takes a slot for `peer` (`HOST:PORT` or a host), or says why not: the
   * pool is full, or the peer holds its share. The release is idempotent.
   */
  take(peer: string): SlotTake {
    const host = peerHost(peer);
    const what = this.#what;
    const mine = `${what} ${host}`;
    const refused = this.#tally.locked((tally) => {
      if (!tally.take(mine, this.perPeer)) {
        return `${host} holds ${
          tally.count(mine)
        } ${what}, its share of ${this.perPeer}`;
      }
      if (!tally.take(what, this.total)) {
        tally.give(mine);
        return `all ${this.total} ${what} are taken`;
      }
    });
    if (refused !== undefined) return { refused };
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#tally.locked((tally) => {
          tally.give(what);
          tally.give(mine);
        });
      },
    };
  }
}
