/**
 * What a setting is: one declaration (flag, kind, default, environment name,
 * help line, the client modes it applies to) from which parsing, the
 * environment, validation and the help text are all derived. The greeter's
 * own settings are declared in `settings.ts`; this module knows none of them.
 *
 * @module
 */

import { isAbsolute, join } from "node:path";
import { ConfigError } from "../errors.ts";

/** Environment variables by name. */
export type Env = Record<string, string | undefined>;

/** How a setting's text becomes its value, and how it is bounded. */
export type SettingKind =
  | { type: "integer"; min: number; max: number }
  | { type: "duration"; min: number; max: number }
  | { type: "choice"; values: readonly string[] }
  | { type: "string" }
  | { type: "path" }
  | { type: "boolean" }
  | { type: "list" };

/** One setting, typed by its value `T`; made by the builders below. */
export interface Setting<T> {
  /** How its text is read. */
  readonly kind: SettingKind;
  /** Its flag without the dashes (`"max-message-size"`); none: environment only. */
  readonly flag?: string;
  /** Its environment variable; none: flag only. */
  readonly env?: string;
  /** The placeholder of its value in help (`"MS"`, `"PATH"`). */
  readonly arg?: string;
  /** One line saying what it does. */
  readonly help: string;
  /** Further help lines (e.g. one per choice). */
  readonly details?: readonly string[];
  /** Its value when neither the flag nor the environment gives one. */
  readonly default: T;
  /** How help shows the default (when `String(default)` would not say it). */
  readonly shownDefault?: string;
  /** The client modes it applies to (any other refuses it); all when unset. */
  readonly modes?: readonly string[];
  /** Reads one given text; throws {@linkcode ConfigError} naming `label`. */
  readonly read: (text: string, label: string) => T;
}

/** What every builder takes. */
export interface SettingOptions {
  /** Flag without the dashes; none: environment only. */
  flag?: string;
  /**
   * Environment variable: by default `GREETER_` and the flag in upper snake
   * case (with `_MS` for a duration); `false` for none.
   */
  env?: string | false;
  /** Placeholder of the value in help. */
  arg?: string;
  /** One line saying what it does. */
  help: string;
  /** Further help lines. */
  details?: readonly string[];
  /** How help shows the default. */
  shownDefault?: string;
  /** Client modes it applies to. */
  modes?: readonly string[];
}

/** Longest duration accepted (a day), in milliseconds. */
export const MAX_DURATION_MS = 86_400_000;

function envName(options: SettingOptions, kind: SettingKind) {
  if (options.env === false) return undefined;
  if (options.env !== undefined) return options.env;
  if (options.flag === undefined) {
    throw new Error("A setting without a flag must state its env name");
  }
  const base = `GREETER_${options.flag.toUpperCase().replaceAll("-", "_")}`;
  return kind.type === "duration" ? `${base}_MS` : base;
}

function make<T>(
  kind: SettingKind,
  options: SettingOptions,
  fallback: T,
  read: (text: string, label: string) => T,
): Setting<T> {
  const { env: _, ...rest } = options;
  return {
    ...rest,
    kind,
    env: envName(options, kind),
    default: fallback,
    read,
  };
}

function readInteger(text: string, label: string, min: number, max: number) {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
    throw new ConfigError(
      `Invalid ${label} "${text}": expected an integer from ${min} to ${max}`,
    );
  }
  return n;
}

/** Bounds of an integer setting. */
export interface Bounds {
  /** Smallest accepted. */
  min: number;
  /** Largest accepted. Default: `Number.MAX_SAFE_INTEGER` (a day for durations). */
  max?: number;
}

/**
 * An integer from `min` to `max`.
 *
 * @example
 * ```ts
 * import { integer } from "./setting.ts";
 * const port = integer({ flag: "port", help: "port", min: 0, max: 65535, default: 50051 });
 * port.env; // "GREETER_PORT"
 * ```
 */
export function integer(
  options: SettingOptions & Bounds & { default: number },
): Setting<number> {
  const { min, max = Number.MAX_SAFE_INTEGER } = options;
  return make(
    { type: "integer", min, max },
    options,
    options.default,
    (t, l) => readInteger(t, l, min, max),
  );
}

/** An integer from `min` to `max`, unset (off) by default. */
export function optionalInteger(
  options: SettingOptions & Bounds,
): Setting<number | undefined> {
  const { min, max = Number.MAX_SAFE_INTEGER } = options;
  return make(
    { type: "integer", min, max },
    options,
    undefined,
    (t, l) => readInteger(t, l, min, max),
  );
}

/** Milliseconds from `min` to `max` (a day by default); env name ends `_MS`. */
export function duration(
  options: SettingOptions & Bounds & { default: number },
): Setting<number> {
  const { min, max = MAX_DURATION_MS } = options;
  return make(
    { type: "duration", min, max },
    options,
    options.default,
    (t, l) => readInteger(t, l, min, max),
  );
}

/** Milliseconds from `min` (default 1) to a day, unset (off) by default. */
export function optionalDuration(
  options: SettingOptions & { min?: number },
): Setting<number | undefined> {
  const kind = {
    type: "duration",
    min: options.min ?? 1,
    max: MAX_DURATION_MS,
  } as const;
  return make(
    kind,
    options,
    undefined,
    (t, l) => readInteger(t, l, kind.min, kind.max),
  );
}

/** One of `values`. */
export function choice<T extends string>(
  options: SettingOptions & { values: readonly T[]; default: T },
): Setting<T> {
  const { values } = options;
  return make({ type: "choice", values }, options, options.default, (t, l) => {
    if (!values.includes(t as T)) {
      throw new ConfigError(
        `Invalid ${l} "${t}": expected one of ${values.join(", ")}`,
      );
    }
    return t as T;
  });
}

/** Free text, checked or converted by `read` when given. */
export function text<T = string>(
  options: SettingOptions & {
    default: T;
    read?: (text: string, label: string) => T;
  },
): Setting<T> {
  const read = options.read ?? ((t: string) => t as T);
  return make({ type: "string" }, options, options.default, read);
}

/**
 * A file; unset by default. A relative path is read from the caller's
 * directory: `deno task` runs in the project root and says where it was
 * started in `INIT_CWD` (see {@linkcode readSettings}).
 */
export function path(options: SettingOptions): Setting<string | undefined> {
  return make({ type: "path" }, options, undefined, (t) => t);
}

/** A flag that is off unless given. */
export function boolean(options: SettingOptions): Setting<boolean> {
  return make({ type: "boolean" }, options, false, (t, l) => {
    if (/^(1|true)$/i.test(t)) return true;
    if (/^(0|false|)$/i.test(t)) return false;
    throw new ConfigError(`Invalid ${l} "${t}": expected true or false`);
  });
}

/**
 * A flag that may be given several times; empty unless given. Its
 * environment variable, if it has one, holds the items comma-separated.
 */
export function list(options: SettingOptions): Setting<string[]> {
  return make({ type: "list" }, options, [] as string[], (t) => [t]);
}

/** A table of settings: config field name -> setting. */
// deno-lint-ignore no-explicit-any
export type SettingTable = Readonly<Record<string, Setting<any>>>;

/** The values a table's settings take, by field name. */
export type SettingValues<S extends SettingTable> = {
  -readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never;
};

/** How a setting's name reads in messages: its flag with spaces. */
export function labelOf(setting: Setting<unknown>, key: string): string {
  return setting.flag?.replaceAll("-", " ") ?? key;
}

/**
 * The values of `table` from flag `values` (as `node:util` `parseArgs`
 * gives them), then `env`, then defaults; validated in table order. A
 * relative path (but `-`, stdin) is resolved against `env.INIT_CWD` when it
 * is set.
 *
 * @example
 * ```ts
 * import { integer, readSettings } from "./setting.ts";
 * const table = { port: integer({ flag: "port", help: "", min: 0, max: 9, default: 1 }) };
 * readSettings(table, {}, { GREETER_PORT: "7" }).port; // 7
 * ```
 */
export function readSettings<S extends SettingTable>(
  table: S,
  values: Record<string, unknown>,
  env: Env,
): SettingValues<S> {
  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(table)) {
    const given = setting.flag === undefined ? undefined : values[setting.flag];
    const label = labelOf(setting, key);
    if (setting.kind.type === "list") {
      // From the environment: comma-separated.
      const listed = setting.env === undefined ? undefined : env[setting.env]
        ?.split(",").map((item) => item.trim()).filter((item) => item !== "");
      out[key] = (given as string[] | undefined) ?? listed ?? setting.default;
      continue;
    }
    if (given === true) { // a boolean flag
      out[key] = true;
      continue;
    }
    const text = (given as string | undefined) ??
      (setting.env === undefined ? undefined : env[setting.env]);
    const value = text === undefined
      ? setting.default
      : setting.read(text, label);
    // "-" is stdin, not a file in the directory.
    out[key] = setting.kind.type === "path" && env.INIT_CWD &&
        typeof value === "string" && !isAbsolute(value) && value !== "-"
      ? join(env.INIT_CWD, value)
      : value;
  }
  return out as SettingValues<S>;
}

/** Which keys of `table` were given as flags in `values`. */
export function givenFlags<S extends SettingTable>(
  table: S,
  values: Record<string, unknown>,
): Set<keyof S> {
  const given = new Set<keyof S>();
  for (const [key, setting] of Object.entries(table)) {
    const value = setting.flag === undefined ? undefined : values[setting.flag];
    const isSet = Array.isArray(value) ? value.length > 0 : value !== undefined;
    if (isSet) given.add(key);
  }
  return given;
}

/** Every environment variable `table` reads, in table order. */
export function envNames(table: SettingTable): string[] {
  return Object.values(table).flatMap((s) =>
    s.env === undefined ? [] : [s.env]
  );
}
