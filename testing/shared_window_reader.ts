/**
 * A worker for the shared window's concurrency test: reads a window live
 * while another thread writes it, and says how many events it read, how
 * many were torn (a payload that does not name its seq, a time that is not
 * its seq) and how often the writer lapped it (a jump in seq).
 *
 * @module
 */

import {
  type SharedWindowMemory,
  SharedWindowReader,
} from "../lib/bus/shared_window.ts";

const decoder = new TextDecoder();

/** This worker's side of its port. */
const scope = self as unknown as {
  onmessage: (message: MessageEvent) => void;
  postMessage(message: unknown): void;
};

scope.onmessage = (message: MessageEvent) => {
  const { memory, total } = message.data as {
    memory: SharedWindowMemory;
    total: number;
  };
  const reader = new SharedWindowReader(memory, { through: 0 });
  scope.postMessage({ ready: true });
  let seq = 0;
  let read = 0;
  let torn = 0;
  let gaps = 0;
  const deadline = Date.now() + 20_000;
  while (seq < total && Date.now() < deadline) {
    const event = reader.read(seq);
    if (!event) continue;
    const text = decoder.decode(event.data);
    const expected = `${event.seq}:`.padEnd(8 + (event.seq % 97), "z");
    if (text !== expected || event.time !== event.seq || event.topic !== "t") {
      torn++;
    }
    if (event.seq !== seq + 1) gaps++;
    seq = event.seq;
    read++;
  }
  scope.postMessage({ read, torn, gaps });
};
