/**
 * Cross-origin requests: only from the origins `--http-cors-origin` lists
 * (none: same origin only), with credentials (the session cookie, a bearer
 * header), preflights answered, and the headers a Connect or gRPC-Web
 * client in a page must read exposed.
 *
 * @module
 */

import { checkOrigin } from "../wire/address.ts";
import { textResponse } from "./status.ts";

/** What a page may send: Connect's, gRPC-Web's and the event stream's headers. */
const ALLOWED_HEADERS = [
  "authorization",
  "content-type",
  "connect-protocol-version",
  "connect-timeout-ms",
  "grpc-timeout",
  "x-grpc-web",
  "x-user-agent",
  "last-event-id",
].join(", ");

/** What a page may read besides the safelisted headers: gRPC-Web's status, and when to retry. */
const EXPOSED_HEADERS = [
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "retry-after",
].join(", ");

/** How long a browser may keep a preflight's answer (seconds). */
const PREFLIGHT_MAX_AGE_S = 7200;

/**
 * The cross-origin policy over a list of allowed origins.
 *
 * @example
 * ```ts
 * import { Cors } from "./cors.ts";
 * const cors = new Cors(["https://app.example.com"]);
 * const request = new Request("http://greeter:8080/v1/events", {
 *   headers: { origin: "https://app.example.com" },
 * });
 * cors.decorate(request, new Response("ok")).headers.get("access-control-allow-origin");
 * // "https://app.example.com"
 * ```
 */
export class Cors {
  #origins: ReadonlySet<string>;

  /** Allows `origins` (each checked by {@linkcode checkOrigin}). */
  constructor(origins: readonly string[]) {
    this.#origins = new Set(origins.map(checkOrigin));
  }

  /** Whether `origin` is one of the listed origins. */
  allows(origin: string | null): boolean {
    return origin !== null && this.#origins.has(origin);
  }

  /**
   * The answer to a preflight (`OPTIONS`): 204 with what a listed origin
   * may send, or 403 (and nothing a browser would take as a grant).
   */
  preflight(request: Request): Response {
    const origin = request.headers.get("origin");
    if (!this.allows(origin)) {
      return textResponse(
        403,
        `Origin ${
          JSON.stringify(origin ?? "")
        } is not allowed: list it with --http-cors-origin`,
        { vary: "origin" },
      );
    }
    return new Response(null, {
      status: 204,
      headers: {
        "access-control-allow-origin": origin!,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST, DELETE",
        "access-control-allow-headers": ALLOWED_HEADERS,
        "access-control-max-age": String(PREFLIGHT_MAX_AGE_S),
        vary: "origin",
      },
    });
  }

  /**
   * `response` as a listed origin may read it (its headers are changed in
   * place); others get no grant. Every answer varies by origin.
   */
  decorate(request: Request, response: Response): Response {
    const origin = request.headers.get("origin");
    const headers = response.headers;
    headers.append("vary", "origin");
    if (this.allows(origin)) {
      headers.set("access-control-allow-origin", origin!);
      headers.set("access-control-allow-credentials", "true");
      headers.set("access-control-expose-headers", EXPOSED_HEADERS);
    }
    return response;
  }
}
