/**
 * A worker for the shared tally's concurrency test: takes and gives one key
 * in its column while another thread does the same, and says how often it
 * saw the key over its limit.
 *
 * @module
 */

import { SharedTally, type SharedTallyMemory } from "../lib/access/tally.ts";

/** This worker's side of its port. */
const scope = self as unknown as {
  onmessage: (message: MessageEvent) => void;
  postMessage(message: unknown): void;
};

scope.onmessage = (message: MessageEvent) => {
  const { memory, column, rounds } = message.data as {
    memory: SharedTallyMemory;
    column: number;
    rounds: number;
  };
  const tally = new SharedTally(memory, column);
  let over = 0;
  for (let i = 0; i < rounds; i++) {
    if (tally.take("hot", 3)) {
      if (tally.count("hot") > 3) over++;
      tally.give("hot");
    }
  }
  scope.postMessage({ over });
};
