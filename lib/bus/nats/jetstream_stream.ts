/**
 * The JetStream stream behind the broker: made with the instance's limits
 * when missing, used as it is (with a warning) when it exists, refused when
 * its subjects would store the instances' own core-NATS traffic, and named
 * by its creation time.
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
  /**
   * Largest event payload the instance publishes (bytes): a new stream
   * refuses messages over it (plus {@linkcode EVENT_HEADER_ROOM_BYTES} for
   * the headers). Default: no limit of its own.
   */
  maxEventBytes?: number;
  /** Told of what an operator should know: lost, regained, adopted limits. */
  onNotice?: (
    level: "info" | "warn",
    message: string,
    fields?: Record<string, string | number | boolean | undefined>,
  ) => void;
}

/**
 * Room a stream's message size limit leaves for an event's headers (its
 * topic, at most 128 characters, and a publish id): nats-server counts
 * headers and payload together.
 */
export const EVENT_HEADER_ROOM_BYTES = 512;

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
 * exists is used as it is, with a warning naming the settings that differ,
 * unless its subjects miss `NAME.events` or would catch the instances'
 * announcements and listings (`NAME.directory…`, e.g. with `NAME.>`): then
 * it is refused with a `RangeError` saying so.
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
  const wanted = streamConfig(options);
  const { name } = wanted;
  try {
    const info = await jsm.streams.info(name);
    checkSubjects(name, info.config.subjects ?? []);
    const differs = STREAM_SETTINGS.filter((key) =>
      String(info.config[key]) !== String(wanted[key])
    );
    if (differs.length > 0) {
      options.onNotice?.(
        "warn",
        "Event stream exists with other settings; using them as they are",
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

/** The settings an adopted stream is compared on. */
const STREAM_SETTINGS = [
  "subjects",
  "storage",
  "max_msgs",
  "max_bytes",
  "max_age",
  "max_msg_size",
  "num_replicas",
] as const;

/** The stream that `options` asks for. */
function streamConfig(
  options: StreamSettings,
): Partial<StreamConfig> & { name: string } {
  const name = options.stream ?? "greeter";
  return {
    name,
    description:
      `Events of the greeter bus: every instance publishes on ${name}.events and reads all of it`,
    subjects: [`${name}.events`],
    storage: options.storage === "memory"
      ? StorageType.Memory
      : StorageType.File,
    num_replicas: options.replicas ?? 1,
    max_msgs: options.maxEvents,
    max_bytes: options.maxBytes,
    max_age: nanos(options.maxAgeMs),
    max_msg_size: options.maxEventBytes === undefined
      ? -1
      : options.maxEventBytes + EVENT_HEADER_ROOM_BYTES,
    duplicate_window: nanos(
      Math.min(options.duplicateWindowMs ?? 120_000, options.maxAgeMs),
    ),
  };
}

/**
 * Refuses a stream whose subjects miss `NAME.events`, or would store what
 * the instances send each other over core NATS (`NAME.directory` and
 * `NAME.directory.alive`): each would come back as an event.
 */
function checkSubjects(name: string, subjects: readonly string[]): void {
  const own = [`${name}.directory`, `${name}.directory.alive`];
  const catching = subjects.filter((subject) =>
    own.some((one) => subjectMatches(subject, one))
  );
  if (catching.length > 0) {
    throw new RangeError(
      `the stream's subjects (${
        subjects.join(", ")
      }) catch the instances' own announcements on ${own.join(" and ")} (by ${
        catching.join(", ")
      }), which subscribers would receive as events: give the stream the subject ${name}.events only (nats stream edit ${name} --subjects ${name}.events), or use another --nats-stream`,
    );
  }
  if (!subjects.some((subject) => subjectMatches(subject, `${name}.events`))) {
    throw new RangeError(
      `the stream's subjects (${
        subjects.join(", ") || "none"
      }) do not take ${name}.events, where the instances publish: add it to the stream, or use another --nats-stream`,
    );
  }
}

/**
 * Whether NATS subject `filter` (with `*` and `>` wildcards) matches the
 * literal `subject`.
 *
 * @example
 * ```ts
 * import { subjectMatches } from "./jetstream_stream.ts";
 * subjectMatches("greeter.>", "greeter.directory.alive"); // true
 * subjectMatches("greeter.*", "greeter.directory.alive"); // false
 * ```
 */
export function subjectMatches(filter: string, subject: string): boolean {
  const want = filter.split(".");
  const got = subject.split(".");
  for (let i = 0; i < want.length; i++) {
    if (want[i] === ">") return got.length > i;
    if (i >= got.length || (want[i] !== "*" && want[i] !== got[i])) {
      return false;
    }
  }
  return want.length === got.length;
}

function isStreamNotFound(error: unknown): boolean {
  const e = error as { code?: number; api_error?: { err_code?: number } };
  return /stream not found/i.test(String((error as Error)?.message)) ||
    e?.api_error?.err_code === 10059;
}
