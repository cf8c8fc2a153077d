/**
 * Admission: how many hub subscriptions one connection (peer
 * `address:port`) and one peer (its remote address, over all its
 * connections) may hold at once, and how many distinct wildcard patterns
 * one peer may use, so that no single client takes every slot, nor fills
 * the hub's pattern index.
 *
 * @module
 */

import { CapacityError } from "../errors.ts";
import { quote } from "../escape.ts";
import { isPattern } from "../bus/topic_pattern.ts";
import { ALL_TOPICS } from "../bus/hub_items.ts";
import { LocalTally, type Tally } from "./tally.ts";

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

/** Options of {@linkcode Admission}. */
export interface AdmissionOptions {
  /** Most subscriptions per connection. Default: no limit. */
  perConnection?: number;
  /** Most subscriptions per peer address. Default: no limit. */
  perPeer?: number;
  /** Most distinct wildcard patterns per peer address, over its subscriptions. Default: no limit. */
  patternsPerPeer?: number;
  /**
   * Where the counts per address are kept: here alone by default; a
   * process's workers share one, so that a peer whose connections land
   * on different workers is one peer.
   */
  peers?: Tally;
}

/** What {@linkcode Admission.admit} counts of a subscription. */
export interface Admitted {
  /** The name it gave (for the refusal's message). */
  name: string;
  /** Its topic filter, as asked: the wildcard patterns in it are counted. */
  topics?: readonly string[];
}

/**
 * Counts live subscriptions per connection and per peer address, and the
 * distinct patterns each address uses; refuses one over any limit.
 *
 * @example
 * ```ts
 * import { Admission } from "./admission.ts";
 * const admission = new Admission({ perConnection: 1, perPeer: 2 });
 * const release = admission.admit("127.0.0.1:5000", { name: "ann" });
 * // admission.admit("127.0.0.1:5000", { name: "bob" }) throws a CapacityError
 * release();
 * ```
 */
export class Admission {
  #perConnection: number;
  #perPeer: number;
  #patternsPerPeer: number;
  /** Live subscriptions per connection (peer address:port). */
  #byConnection = new Map<string, number>();
  /**
   * Per peer address: its live subscriptions (`s ADDRESS`), the
   * subscriptions that use each wildcard pattern (`p ADDRESS PATTERN`),
   * and how many distinct patterns it uses (`d ADDRESS`).
   */
  #peers: Tally;

  /** Admits within `options`' limits (each: no limit when absent). */
  constructor(options: AdmissionOptions = {}) {
    this.#perConnection = options.perConnection ?? Infinity;
    this.#perPeer = options.perPeer ?? Infinity;
    this.#patternsPerPeer = options.patternsPerPeer ?? Infinity;
    this.#peers = options.peers ?? new LocalTally();
  }

  /**
   * Counts a subscription against its connection (`peer`, as grpc-js's
   * `getPeer()` names it) and its address; throws a
   * {@linkcode CapacityError} naming the limit when one is full. The
   * returned function uncounts it.
   */
  admit(peer: string, subscription: Admitted): () => void {
    const name = subscription.name;
    const byConnection = this.#byConnection;
    const count = byConnection.get(peer) ?? 0;
    if (count >= this.#perConnection) {
      throw new CapacityError(
        `Cannot subscribe ${
          quote(name)
        }: this connection holds ${count} subscriptions, the limit; open another connection or close one`,
      );
    }
    const address = addressOf(peer);
    const patterns = [
      ...new Set(
        (subscription.topics ?? []).filter((t) =>
          t !== ALL_TOPICS && isPattern(t)
        ),
      ),
    ];
    // One step for every count of the address: another worker's admit of
    // the same peer comes before or after it, never between.
    this.#peers.locked((peers) => {
      const key = `s ${address}`;
      if (!peers.take(key, this.#perPeer)) {
        throw new CapacityError(
          `Cannot subscribe ${quote(name)}: peer ${address} holds ${
            peers.count(key)
          } subscriptions, the per-peer limit of ${this.#perPeer} (--max-subscribers-per-peer); close some first`,
        );
      }
      try {
        this.#takePatterns(peers, address, name, patterns);
      } catch (error) {
        peers.give(key);
        throw error;
      }
    });
    add(byConnection, peer, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      add(byConnection, peer, -1);
      this.#peers.locked((peers) => {
        peers.give(`s ${address}`);
        for (const pattern of patterns) {
          peers.give(`p ${address} ${pattern}`);
          if (peers.count(`p ${address} ${pattern}`) === 0) {
            peers.give(`d ${address}`);
          }
        }
      });
    };
  }

  /**
   * Counts `patterns` (distinct) against `address`; throws when those it
   * does not use yet would take it over its limit.
   */
  #takePatterns(
    peers: Tally,
    address: string,
    name: string,
    patterns: readonly string[],
  ): void {
    if (patterns.length === 0) return;
    const unused =
      patterns.filter((p) => peers.count(`p ${address} ${p}`) === 0).length;
    const held = peers.count(`d ${address}`);
    if (held + unused > this.#patternsPerPeer) {
      throw new CapacityError(
        `Cannot subscribe ${
          quote(name)
        }: peer ${address} uses ${held} distinct topic patterns and this adds ${unused}, over the per-peer limit of ${this.#patternsPerPeer} (--max-patterns-per-peer); reuse patterns, or name topics`,
      );
    }
    for (const pattern of patterns) {
      if (peers.count(`p ${address} ${pattern}`) === 0) {
        peers.take(`d ${address}`, Infinity);
      }
      peers.take(`p ${address} ${pattern}`, Infinity);
    }
  }
}
