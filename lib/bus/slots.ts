/**
 * A bounded pool of slots that holders take from (the hub's reads from the
 * broker's log, deep resumes): the interface the hub asks of it, and the
 * pool it makes when it is handed none, bounded in total only.
 * `lib/access/peer_shares.ts` gives each peer a share of one.
 *
 * @module
 */

/** What taking a slot gave: its release (idempotent), or why none was free. */
export type SlotTake =
  | { readonly release: () => void; readonly refused?: undefined }
  | { readonly refused: string; readonly release?: undefined };

/** A bounded pool of slots. */
export interface Slots {
  /** Takes a slot for `holder` (a peer, `HOST:PORT`), or says why it may not. */
  take(holder: string): SlotTake;
}

/**
 * At most `total` slots, whoever holds them; refusals name them `what`.
 *
 * @example
 * ```ts
 * import { totalSlots } from "./slots.ts";
 * const slots = totalSlots(1, "reads");
 * const first = slots.take("10.0.0.1:5000");
 * slots.take("10.0.0.2:5000").refused; // "all 1 reads are taken"
 * first.release?.();
 * ```
 */
export function totalSlots(total: number, what: string): Slots {
  let held = 0;
  return {
    take() {
      if (held >= total) return { refused: `all ${total} ${what} are taken` };
      held++;
      let released = false;
      return {
        release: () => {
          if (!released) held--;
          released = true;
        },
      };
    },
  };
}
