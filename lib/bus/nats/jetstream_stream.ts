/**
 * The JetStream stream behind the broker: made with the instance's limits
 * when missing, used as it is (with a warning) when it exists, and named by
 * its creation time.
 *
 * @module
 */

import { nanos } from "@nats-io/nats-core";
import {
  type JetStreamManager,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";

/** The stream's name and limits, and where to say what differs. */
export interface StreamSettings {
  /** The stream's name; its subject is `NAME.events`. Default `greeter`. */
  stream?: string;
  /** Copies of the stream in a cluster. Default 1. */
  replicas?: number;
  /** `file` (survives a nats-server restart) or `memory`. Default `file`. */
  storage?: "file" | "memory";
  /** Most events the stream keeps. */
  maxEvents: number;
  /** Most bytes the stream keeps. */
  maxBytes: number;
  /** Oldest event the stream keeps (ms). */
  maxAgeMs: number;
  /** Duplicate window for publishes with an id (ms). Default 2 min. */
  duplicateWindowMs?: number;
  /** Told of what an operator should know: lost, regained, adopted limits. */
  onNotice?: (
    level: "info" | "warn",
    message: string,
    fields?: Record<string, string | number | boolean | undefined>,
  ) => void;
}

/**
 * The epoch of a stream: its creation time in nanoseconds, as 16 hex digits
 * (the width of the embedded broker's random epochs).
 */
export function streamEpoch(created: string): string {
  const match = created.match(/^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-].*)$/);
  const ms = Date.parse(match ? `${match[1]}${match[3]}` : created);
  if (Number.isNaN(ms)) {
    throw new RangeError(`Cannot read the stream's creation time "${created}"`);
  }
  const fraction = (match?.[2] ?? "").padEnd(9, "0").slice(0, 9);
  const ns = BigInt(ms) * 1_000_000n + BigInt(fraction);
  return ns.toString(16).padStart(16, "0");
}

/**
 * The stream `options` name, created with their limits if missing; one that
 * exists is used as it is, with a warning naming the limits that differ.
 *
 * @example
 * ```ts ignore
 * const info = await ensureStream(jsm, { maxEvents: 10_000, maxBytes: 1 << 26, maxAgeMs: 300_000 });
 * ```
 */
export async function ensureStream(
  jsm: JetStreamManager,
  options: StreamSettings,
): Promise<StreamInfo> {
  const name = options.stream ?? "greeter";
  const wanted: Partial<StreamConfig> & { name: string } = {
    name,
    subjects: [`${name}.events`],
    storage: options.storage === "memory"
      ? StorageType.Memory
      : StorageType.File,
    num_replicas: options.replicas ?? 1,
    max_msgs: options.maxEvents,
    max_bytes: options.maxBytes,
    max_age: nanos(options.maxAgeMs),
    duplicate_window: nanos(
      Math.min(options.duplicateWindowMs ?? 120_000, options.maxAgeMs),
    ),
  };
  try {
    const info = await jsm.streams.info(name);
    const differs =
      (["max_msgs", "max_bytes", "max_age", "num_replicas"] as const)
        .filter((key) => info.config[key] !== wanted[key]);
    if (differs.length > 0) {
      options.onNotice?.(
        "warn",
        "Event stream exists with other limits; using them as they are",
        Object.fromEntries(
          differs.map((key) => [
            key,
            `${info.config[key]} (asked ${wanted[key]})`,
          ]),
        ),
      );
    }
    return info;
  } catch (error) {
    if (!isStreamNotFound(error)) throw error;
    return await jsm.streams.add(wanted);
  }
}

function isStreamNotFound(error: unknown): boolean {
  const e = error as { code?: number; api_error?: { err_code?: number } };
  return /stream not found/i.test(String((error as Error)?.message)) ||
    e?.api_error?.err_code === 10059;
}
