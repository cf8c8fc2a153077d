/**
 * Folder `lib/access/`: who may do what, and how much. Bearer tokens
 * (`tokens.ts`), what each grants (`permissions.ts`), the per-peer guard
 * (`peer_guard.ts`), subscriber limits (`admission.ts`, counted by
 * `tally.ts`: one thread's, or one for every worker) and, here, the
 * check a transport makes of every request. It knows no transport: a
 * caller is a peer address and the credential it presented, and a refusal
 * is one of the project's typed errors, which each transport maps to its
 * own status. May import `lib/bus/` (topic patterns), `lib/observe/` (log
 * budgets), `lib/wire/address.ts` and the shared modules of `lib/`; never
 * `@grpc/grpc-js`.
 *
 * This module: the token list in force (replaceable while serving: the
 * token file's reload) and the checks made with it. Refusals are logged at
 * `warn`, at most once per peer per 10 s and never with a token. The token
 * is always checked first (in constant time), so a valid one always passes:
 * what is limited is failures. A peer whose bad tokens exceed 10 in a
 * second has them refused with a short answer, and one log line, for 10 s
 * ({@linkcode PeerGuard}): before, it was refused without checking, and a
 * stranger's guesses locked out every valid token behind the same address
 * (a NAT, a proxy, Prometheus). What keeps guessing hopeless is the token's
 * length (the start warns below 16 bytes), not a rate. A reload revokes:
 * calls still open (each transport registers its long ones,
 * {@linkcode AccessControl.register}) are checked again against the new
 * list, and those it refuses are ended. Health and reflection
 * are open: probes must work without a token, and reflection describes only
 * the public contract (the protos in this repository), which tools such as
 * `buf curl` read before every call.
 *
 * @module
 */

import {
  AccessList,
  checksRequest,
  type Permissions,
  refusal,
} from "./permissions.ts";
import { peerHost } from "../wire/address.ts";
import { PeerGuard } from "./peer_guard.ts";
import { PermissionDeniedError, UnauthenticatedError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { quote } from "../escape.ts";

/** Methods of these services need no token. */
const OPEN_SERVICE_PREFIXES = [
  "/grpc.health.v1.Health/",
  "/grpc.reflection.v1.ServerReflection/",
  "/grpc.reflection.v1alpha.ServerReflection/",
];

/** Who makes a request, as every transport can tell. */
export interface Caller {
  /** Where it comes from: `HOST:PORT` (the guard counts by its host). */
  readonly peer: string;
  /** The `authorization` value it presented (`Bearer <token>`), if any. */
  readonly authorization?: string;
}

/**
 * A call still open, as its transport registers it: who makes it, what it
 * was authorized for, and how to end it when a reload refuses it.
 */
export interface OpenCall {
  /** Who makes it. */
  readonly caller: Caller;
  /** What it calls (`/package.Service/Method`). */
  readonly method: string;
  /** The request its topics were checked on, where the request decides. */
  readonly request?: unknown;
  /**
   * Ends it with `error` (an {@linkcode UnauthenticatedError} or a
   * {@linkcode PermissionDeniedError}), saying goodbye where its stream
   * has one; called at most once.
   */
  revoke(error: UnauthenticatedError | PermissionDeniedError): void;
}

/** Options of {@linkcode AccessControl}. */
export interface AccessControlOptions {
  /** Where refusals are logged. */
  log: Logger;
  /** Default: a new {@linkcode PeerGuard}. */
  guard?: PeerGuard;
}

/**
 * The token list in force and the checks made with it. A transport asks
 * {@linkcode AccessControl.authenticate} once per call (unless the method is
 * {@linkcode AccessControl.isOpen}), then, for a method whose request
 * decides ({@linkcode AccessControl.checksRequest}),
 * {@linkcode AccessControl.authorize} with the decoded request.
 *
 * @example
 * ```ts
 * import { AccessControl } from "./access.ts";
 * import { Logger } from "../log.ts";
 * const access = new AccessControl(["s3cret publish:news.>"], {
 *   log: new Logger({ write: () => {} }),
 * });
 * const caller = { peer: "10.0.0.1:5000", authorization: "Bearer s3cret" };
 * const permissions = access.authenticate(caller, "/helloworld.Greeter/Publish");
 * access.authorize(permissions, caller, "/helloworld.Greeter/Publish", { topic: "news.x" }); // allowed
 * access.replace(["n3w"]); // a reload: new calls need the new token
 * ```
 */
export class AccessControl {
  #list: AccessList;
  #lines: readonly string[];
  #watchers = new Set<(lines: readonly string[]) => void>();
  #log: Logger;
  #guard: PeerGuard;
  /** Calls still open, checked again on each reload. */
  #open = new Set<OpenCall>();

  /** Reads `lines` (token file lines); throws `ConfigError` when one is wrong. */
  constructor(lines: readonly string[], options: AccessControlOptions) {
    this.#list = new AccessList(lines);
    this.#lines = [...lines];
    this.#log = options.log;
    this.#guard = options.guard ?? new PeerGuard();
  }

  /** The token list in force. */
  get list(): AccessList {
    return this.#list;
  }

  /**
   * Puts `lines` in force for every call from now on, and ends the open
   * calls ({@linkcode AccessControl.register}) it refuses: those whose
   * token it no longer holds, with {@linkcode UnauthenticatedError}, and
   * those whose token no longer grants what they do, with
   * {@linkcode PermissionDeniedError}. Throws `ConfigError` (keeping the
   * list in force, and every call) when they are not a valid list. Returns
   * the new list.
   */
  replace(lines: readonly string[]): AccessList {
    const list = this.#list = new AccessList(lines);
    this.#lines = [...lines];
    for (const watcher of this.#watchers) watcher(this.#lines);
    const revoked: [OpenCall, UnauthenticatedError | PermissionDeniedError][] =
      [];
    // One constant-time lookup per distinct credential, not per call.
    const found = new Map<string | undefined, Permissions | undefined>();
    for (const call of this.#open) {
      const { authorization } = call.caller;
      if (!found.has(authorization)) {
        found.set(authorization, list.find(authorization));
      }
      const permissions = found.get(authorization);
      if (!permissions) {
        revoked.push([
          call,
          new UnauthenticatedError(
            `The token of this call was revoked (the server's token list was reloaded without it): ${call.method} ended; ask for a token the server accepts`,
          ),
        ]);
        continue;
      }
      const why = refusal(call.method, call.request, permissions);
      if (why) {
        revoked.push([
          call,
          new PermissionDeniedError(
            `Permission denied for ${call.method} on topic ${
              quote(why.topic)
            } since the server's token list was reloaded: this token no longer grants ${
              quote(why.needs)
            }; the call ended`,
          ),
        ]);
      }
    }
    for (const [call, error] of revoked) {
      this.#open.delete(call);
      call.revoke(error);
    }
    if (revoked.length > 0) {
      this.#log.warn("Ended open calls the reloaded token list refuses", {
        calls: revoked.length,
      });
    }
    return list;
  }

  /**
   * Registers a call still open, so that a reload that refuses it ends it
   * (see {@linkcode AccessControl.replace}); returns the function that
   * forgets it, to call when it ends. Transports register their long calls
   * (streams); a unary call ends before it matters.
   */
  register(call: OpenCall): () => void {
    this.#open.add(call);
    return () => this.#open.delete(call);
  }

  /** Calls registered and still open. */
  get openCalls(): number {
    return this.#open.size;
  }

  /** The lines in force (a process's workers are handed them). */
  get lines(): readonly string[] {
    return this.#lines;
  }

  /** Calls `listener` with the lines each time others are put in force; returns the function that stops it. */
  watch(listener: (lines: readonly string[]) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  /** Whether `method` (`/package.Service/Method`) needs no token. */
  isOpen(method: string): boolean {
    return OPEN_SERVICE_PREFIXES.some((prefix) => method.startsWith(prefix));
  }

  /** Whether `method`'s request must be seen before the call may go on. */
  checksRequest(method: string): boolean {
    return checksRequest(method);
  }

  /**
   * What `caller`'s credential may do when it calls `what`. Throws
   * {@linkcode UnauthenticatedError} (logged, rate-limited) when it carries
   * no accepted token. An accepted token always passes, however many bad
   * ones its address sent (failures are what the guard counts).
   */
  authenticate(caller: Caller, what: string): Permissions {
    const permissions = this.#list.find(caller.authorization);
    if (permissions) return permissions;
    const host = peerHost(caller.peer);
    if (this.#guard.failed(host)) {
      this.#log.warn(
        "Too many failed authentications: refusing this address's bad tokens in short",
        { peer: host, seconds: Math.ceil(this.#guard.blockedFor(host) / 1000) },
      );
    }
    const blockedMs = this.#guard.blockedFor(host);
    if (blockedMs > 0) {
      this.#refused("too many failed authentications", what, caller.peer);
      throw new UnauthenticatedError(
        `Missing or invalid bearer token, and too many failed authentications from ${host}: refused in short for ${
          Math.ceil(blockedMs / 1000)
        } s more (a valid token still passes); fix the token, then retry`,
      );
    }
    this.#refused("missing or invalid bearer token", what, caller.peer);
    throw new UnauthenticatedError(
      `Missing or invalid bearer token for ${what}: send "authorization: Bearer <token>" (gRPC metadata, or an HTTP header)`,
    );
  }

  /**
   * Checks that `permissions` allow `method` with `request` (its topics
   * decide); throws {@linkcode PermissionDeniedError} naming the topic and
   * the missing grant (logged, rate-limited) when they do not.
   */
  authorize(
    permissions: Permissions,
    caller: Caller,
    method: string,
    request: unknown,
  ): void {
    const why = refusal(method, request, permissions);
    if (!why) return;
    this.#refused("permission denied", method, caller.peer, why);
    const on = why.topic === "" ? "" : ` on topic ${quote(why.topic)}`;
    throw new PermissionDeniedError(
      `Permission denied for ${method}${on}: this token lacks ${
        quote(why.needs)
      }; ask for a token that grants it`,
    );
  }

  /**
   * Checks a metrics read: throws {@linkcode UnauthenticatedError} without
   * an accepted token, {@linkcode PermissionDeniedError} for a token without
   * the `metrics` grant.
   */
  authorizeMetrics(caller: Caller): void {
    if (this.authenticate(caller, "/metrics").metrics) return;
    this.#refused("permission denied", "/metrics", caller.peer, {
      topic: "",
      needs: "metrics",
    });
    throw new PermissionDeniedError(
      'Permission denied for /metrics: this token lacks "metrics"',
    );
  }

  #refused(
    why: string,
    what: string,
    peer: string,
    denied?: { topic: string; needs: string },
  ): void {
    const unlogged = this.#guard.shouldLog(peerHost(peer));
    if (unlogged === undefined) return;
    this.#log.warn(`Refused a call: ${why}`, {
      method: what,
      peer,
      topic: denied?.topic || undefined,
      needs: denied?.needs,
      refusedSinceLastLine: unlogged || undefined,
    });
  }
}
