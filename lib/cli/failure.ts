/**
 * What the command line says when it fails: the error's line, what it likely
 * means when people meet it (a hint), and the exit status, which tells a
 * failed call's gRPC status apart (64 plus its code, as grpcurl exits), a
 * command line that cannot run (2), and anything else (1). As text, or as a
 * JSON line for scripts (`--output json`).
 *
 * @module
 */

import { ConfigError, RpcError } from "../errors.ts";
import { escapeUnsafe } from "../escape.ts";

/** The gRPC status codes by name, as `RpcError.code` carries them. */
export const GRPC_CODES: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/** A failed call exits with this plus its gRPC status code (grpcurl's rule). */
export const RPC_EXIT_BASE = 64;

/** How the command line failed, ready to print. */
export interface Failure {
  /** The exit status. */
  readonly exitCode: number;
  /** `error: …`, the error's own words. */
  readonly message: string;
  /** What it likely means, when it is a failure people meet. */
  readonly hint?: string;
  /** A command line that cannot be used: `--help` says how to write it. */
  readonly usage?: boolean;
  /** For a failed call: its gRPC status name and code, and where it went. */
  readonly rpc?: {
    readonly code: string;
    readonly status: number;
    readonly target: string;
  };
}

/** Hints for a failed call, tried in order on its message (`when` the client's TLS fits). */
export const RPC_HINTS: readonly {
  pattern: RegExp;
  when?: (tls: boolean) => boolean;
  hint: string;
}[] = [
  {
    // Which one comes depends on when the server's alert arrives: before
    // grpc-js' session saw an error, its words are only "Failed to connect".
    pattern:
      /write EPIPE|ECONNRESET|CertificateRequired|certificate required|Failed to connect/i,
    when: (tls) => tls,
    hint:
      "the server likely wants a client certificate (mTLS): give --tls-cert and --tls-key",
  },
  {
    pattern: /wrong version number|InvalidContentType|packet length too long/,
    hint:
      "TLS to a port that speaks plaintext: drop --tls and --tls-ca, or give the server's TLS port",
  },
  {
    pattern: /Failed to connect|ECONNRESET|socket hang up/,
    when: (tls) => !tls,
    hint:
      "plaintext to a port that likely speaks TLS: give --tls-ca (or --tls for a certificate the system trusts)",
  },
  {
    pattern: /ECONNREFUSED/,
    hint:
      "nothing listens there: start the server, or give its address (--target HOST:PORT; it binds 127.0.0.1:50051 unless told otherwise)",
  },
  {
    pattern:
      /unable to get local issuer|self[- ]signed certificate|unable to verify|certificate has expired|CERT_/,
    hint:
      "the server's certificate is not one this client trusts: give --tls-ca with the CA that signed it",
  },
  {
    pattern: /altnames|does not match certificate|Hostname\/IP does not match/,
    hint:
      "the server's certificate does not name this target: connect by a name or address it has",
  },
  {
    pattern: /ENOTFOUND|EAI_AGAIN|Name resolution failed/,
    hint: "that host name does not resolve: check --target",
  },
  {
    pattern: /^[^:]+:\d+: UNAUTHENTICATED/,
    hint:
      "give the client a token the server accepts: GREETER_TOKEN_FILE=PATH or GREETER_TOKEN",
  },
];

/**
 * `error` as the command line reports it; `tls` is whether the client
 * connected with TLS (a hint depends on it), `parsed` whether the command
 * line had been read: a setting that fails after that (a file it names
 * cannot be read, or is wrong) exits 2 too, with no pointer to `--help`,
 * which cannot help with it.
 *
 * @example
 * ```ts
 * import { failure } from "./failure.ts";
 * import { RpcError } from "../errors.ts";
 * const f = failure(new RpcError("UNAVAILABLE", "No connection established. Last error: write EPIPE", "localhost:50051"), { tls: true });
 * f.exitCode; // 78: 64 + 14
 * f.hint; // "the server likely wants a client certificate (mTLS): …"
 * ```
 */
export function failure(
  error: unknown,
  options: { tls?: boolean; parsed?: boolean } = {},
): Failure {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof RpcError) {
    const status = GRPC_CODES[error.code] ?? GRPC_CODES.UNKNOWN;
    const hint = RPC_HINTS.find((h) =>
      h.pattern.test(message) && (h.when?.(options.tls ?? false) ?? true)
    )?.hint;
    return {
      exitCode: RPC_EXIT_BASE + status,
      message,
      hint,
      rpc: { code: error.code, status, target: error.target },
    };
  }
  if (error instanceof ConfigError) {
    return { exitCode: 2, message, usage: !options.parsed };
  }
  return { exitCode: 1, message };
}

/**
 * The format a command line asks its output in, read before it is parsed:
 * a script that asked for `--output json` reads a bad command line (a
 * typo'd flag, a missing value) as a JSON line too, not as text.
 *
 * @example
 * ```ts
 * import { askedFormat } from "./failure.ts";
 * askedFormat(["--mode", "publsh", "--output", "json"]); // "json"
 * askedFormat(["--output=json"]); // "json"
 * askedFormat(["--payload", "--output json"]); // "text"
 * ```
 */
export function askedFormat(args: readonly string[]): "text" | "json" {
  const end = args.indexOf("--");
  const flags = end < 0 ? args : args.slice(0, end);
  for (let i = 0; i < flags.length; i++) {
    if (flags[i] === "--output=json") return "json";
    if (flags[i] === "--output" && flags[i + 1] === "json") return "json";
  }
  return "text";
}

/**
 * The lines to print on stderr: `error: …` (and `hint: …`) as text, or one
 * JSON object (`{"kind":"error",…}`), escaped for the terminal either way.
 *
 * @example
 * ```ts
 * import { failureLines } from "./failure.ts";
 * failureLines({ exitCode: 1, message: "Cannot bind" }, "text"); // ["error: Cannot bind"]
 * ```
 */
export function failureLines(
  failure: Failure,
  format: "text" | "json",
): string[] {
  if (format === "json") {
    return [escapeUnsafe(JSON.stringify({
      kind: "error",
      ...(failure.rpc ?? {}),
      message: failure.message,
      ...(failure.hint ? { hint: failure.hint } : {}),
      exit_code: failure.exitCode,
    }))];
  }
  const lines = [`error: ${escapeUnsafe(failure.message)}`];
  if (failure.hint) lines.push(`hint: ${failure.hint}`);
  if (failure.usage) lines.push("Run with --help for usage.");
  return lines;
}
