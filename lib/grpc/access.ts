/**
 * Access control: who may call (a bearer token from the token list) and
 * what each token may do ({@linkcode Permissions}), for the gRPC calls (an
 * interceptor) and the metrics endpoint. The list can be replaced while
 * serving (the token file's reload). Refusals are logged at `warn`, at most
 * once per peer per 10 s and never with a token; a peer that fails
 * authentication more than 10 times in a second is refused without checking
 * for 10 s ({@linkcode PeerGuard}).
 *
 * Health and reflection are open: probes must work without a token, and
 * reflection describes only the public contract (the protos in this
 * repository), which tools such as `buf curl` read before every call.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import {
  AccessList,
  checksRequest,
  type Permissions,
  refusal,
} from "./permissions.ts";
import { peerHost } from "./address.ts";
import { PeerGuard } from "./peer_guard.ts";
import { PermissionDeniedError, UnauthenticatedError } from "../errors.ts";
import { toServiceError } from "./status.ts";
import type { Logger } from "../log.ts";

/** Calls to these services need no token. */
const OPEN_SERVICE_PREFIXES = [
  "/grpc.health.v1.Health/",
  "/grpc.reflection.v1.ServerReflection/",
  "/grpc.reflection.v1alpha.ServerReflection/",
];

/** Options of {@linkcode AccessControl}. */
export interface AccessControlOptions {
  /** Where refusals are logged. */
  log: Logger;
  /** Default: a new {@linkcode PeerGuard}. */
  guard?: PeerGuard;
}

/** Either what the caller may do, or the error that refuses it. */
type Authentication =
  | { permissions: Permissions; error?: undefined }
  | { error: Error; permissions?: undefined };

/**
 * The token list in force and the checks made with it.
 *
 * @example
 * ```ts ignore
 * const access = new AccessControl(["s3cret"], { log });
 * new grpc.Server({ interceptors: [access.interceptor()] });
 * access.replace(["n3w"]); // a reload: new calls need the new token
 * ```
 */
export class AccessControl {
  #list: AccessList;
  #log: Logger;
  #guard: PeerGuard;

  /** Reads `lines` (token file lines); throws `ConfigError` when one is wrong. */
  constructor(lines: readonly string[], options: AccessControlOptions) {
    this.#list = new AccessList(lines);
    this.#log = options.log;
    this.#guard = options.guard ?? new PeerGuard();
  }

  /** The token list in force. */
  get list(): AccessList {
    return this.#list;
  }

  /**
   * Puts `lines` in force for every call from now on. Throws `ConfigError`
   * (keeping the list in force) when they are not a valid list.
   */
  replace(lines: readonly string[]): AccessList {
    return this.#list = new AccessList(lines);
  }

  /**
   * Checks an `authorization` value from `peer` (`HOST:PORT`) calling
   * `what`: what the token may do, or the error to answer with (logged,
   * rate-limited).
   */
  authenticate(
    authorization: string | undefined,
    peer: string,
    what: string,
  ): Authentication {
    const host = peerHost(peer);
    const blockedMs = this.#guard.blockedFor(host);
    if (blockedMs > 0) {
      const seconds = Math.ceil(blockedMs / 1000);
      this.#refused("too many failed authentications", what, peer);
      return {
        error: new UnauthenticatedError(
          `Too many failed authentications from ${host}: refused without checking for ${seconds} s more; fix the token, then retry`,
        ),
      };
    }
    const permissions = this.#list.find(authorization);
    if (permissions) return { permissions };
    if (this.#guard.failed(host)) {
      this.#log.warn(
        "Too many failed authentications: refusing this address without checking",
        { peer: host, seconds: Math.ceil(this.#guard.blockedFor(host) / 1000) },
      );
    }
    this.#refused("missing or invalid bearer token", what, peer);
    return {
      error: new UnauthenticatedError(
        `Missing or invalid bearer token for ${what}: send metadata "authorization: Bearer <token>"`,
      ),
    };
  }

  /** A grpc-js server interceptor applying the checks to every call but the open ones. */
  interceptor(): grpc.ServerInterceptor {
    return (method, call) => {
      const path = method.path;
      if (OPEN_SERVICE_PREFIXES.some((prefix) => path.startsWith(prefix))) {
        return new grpc.ServerInterceptingCall(call); // passes everything on
      }
      let permissions: Permissions | undefined;
      let refused = false;
      const refuse = (error: Error) => {
        refused = true;
        const { code, details } = toServiceError(error);
        call.sendStatus({ code, details });
      };
      return new grpc.ServerInterceptingCall(call, {
        start: (next) => {
          next({
            onReceiveMetadata: (metadata, forward) => {
              const [value] = metadata.get("authorization");
              const outcome = this.authenticate(
                typeof value === "string" ? value : undefined,
                call.getPeer(),
                path,
              );
              if (outcome.error) return refuse(outcome.error);
              permissions = outcome.permissions;
              forward(metadata);
            },
            onReceiveMessage: (message, forward) => {
              if (refused) return;
              const why = permissions && checksRequest(path)
                ? refusal(path, message, permissions)
                : undefined;
              if (!why) return forward(message);
              this.#refused("permission denied", path, call.getPeer(), why);
              refuse(
                new PermissionDeniedError(
                  `Permission denied for ${path} on topic "${why.topic}": this token lacks "${why.needs}"; ask for a token that grants it`,
                ),
              );
            },
            onReceiveHalfClose: (forward) => {
              if (!refused) forward();
            },
          });
        },
      });
    };
  }

  /**
   * Checks a metrics request: `undefined` when it may read, or the HTTP
   * status and text that refuse it (401 without an accepted token, 403 for
   * a token without the `metrics` grant).
   */
  checkMetrics(
    authorization: string | undefined,
    peer: string,
  ): { status: number; text: string } | undefined {
    const outcome = this.authenticate(
      authorization,
      peer,
      "/metrics",
    );
    if (outcome.error) return { status: 401, text: outcome.error.message };
    if (outcome.permissions.metrics) return undefined;
    this.#refused("permission denied", "/metrics", peer, {
      topic: "",
      needs: "metrics",
    });
    return {
      status: 403,
      text: 'Permission denied for /metrics: this token lacks "metrics"',
    };
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
