/**
 * Where an HTTP request's token comes from, and the session cookie that
 * carries it for pages: a page's `EventSource` cannot set headers, so a
 * token is also taken from an HttpOnly cookie (set by `POST /v1/session`),
 * or, on the event stream only, from an `access_token` query parameter
 * (which no log line or metric ever holds: the transport never logs a
 * query). A request whose token came from the cookie must come from this
 * origin or a listed one: the cookie must not let another site's page act
 * for the user.
 *
 * @module
 */

import type { AccessControl, Caller } from "../access/access.ts";
import type { Permissions } from "../access/permissions.ts";
import { PermissionDeniedError } from "../errors.ts";
import type { Cors } from "./cors.ts";
import { refusalResponse } from "./status.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "greeter_token";

/** The session's path. */
export const SESSION_PATH = "/v1/session";

/** Where a request's token came from. */
export type CredentialSource = "header" | "cookie" | "query";

/** An HTTP caller: who, what it presented, and where that came from. */
export interface HttpCaller extends Caller {
  /** Where `authorization` came from; undefined when none was presented. */
  readonly source?: CredentialSource;
}

/** The session cookie's value in `headers`, decoded; undefined when absent or malformed. */
function sessionCookie(headers: Headers): string | undefined {
  const header = headers.get("cookie");
  if (!header) return undefined;
  for (const pair of header.split(";")) {
    const at = pair.indexOf("=");
    if (at < 0 || pair.slice(0, at).trim() !== SESSION_COOKIE) continue;
    try {
      return decodeURIComponent(pair.slice(at + 1).trim()) || undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The caller from `peer` of a request with `headers`: its `authorization`
 * header, else its session cookie, else (when `query` is given) the
 * `access_token` parameter of that URL.
 *
 * @example
 * ```ts
 * import { callerOf } from "./credentials.ts";
 * const headers = new Headers({ cookie: "theme=dark; greeter_token=s3cret" });
 * callerOf(headers, "10.0.0.1:5000"); // { peer: "10.0.0.1:5000", authorization: "Bearer s3cret", source: "cookie" }
 * ```
 */
export function callerOf(
  headers: Headers,
  peer: string,
  query?: URL,
): HttpCaller {
  const header = headers.get("authorization");
  if (header !== null) return { peer, authorization: header, source: "header" };
  const cookie = sessionCookie(headers);
  if (cookie !== undefined) {
    return { peer, authorization: `Bearer ${cookie}`, source: "cookie" };
  }
  const token = query?.searchParams.get("access_token");
  if (token) return { peer, authorization: `Bearer ${token}`, source: "query" };
  return { peer };
}

/**
 * Whether a request to `url` with `headers` comes from the page's own
 * origin (the `Origin` a browser sends against the host it asked for), or
 * carries no `Origin` (not a cross-origin browser request).
 */
function sameOrigin(headers: Headers, url: string): boolean {
  const origin = headers.get("origin");
  return origin === null || origin === new URL(url).origin;
}

/** Who may call, and what a request must present. */
export interface CallerCheck {
  /** The tokens in force; undefined: none needed. */
  access: AccessControl | undefined;
  /** The listed origins, whose pages may use the session cookie. */
  cors: Cors;
}

/**
 * What `caller` (of a request to `url` with `headers`) may do when it calls
 * `what` (none needed: undefined). Throws `UnauthenticatedError` without an
 * accepted token, and `PermissionDeniedError` for the session cookie sent
 * from an origin that is neither this one nor listed.
 *
 * @example
 * ```ts ignore
 * const permissions = authenticate({ access, cors }, request.headers, request.url, caller, "/helloworld.Greeter/Publish");
 * ```
 */
export function authenticate(
  check: CallerCheck,
  headers: Headers,
  url: string,
  caller: HttpCaller,
  what: string,
): Permissions | undefined {
  const { access, cors } = check;
  if (!access) return undefined;
  const origin = headers.get("origin");
  if (
    caller.source === "cookie" && !sameOrigin(headers, url) &&
    !cors.allows(origin)
  ) {
    throw new PermissionDeniedError(
      `The session cookie is not accepted from origin ${
        JSON.stringify(origin)
      }: list it with --http-cors-origin, or send the token in an authorization header`,
    );
  }
  return access.authenticate(caller, what);
}

/** `Set-Cookie` for the session: `value` (empty: cleared). */
function setCookie(value: string, secure: boolean): string {
  const attributes = [
    `${SESSION_COOKIE}=${encodeURIComponent(value)}`,
    "Path=/",
    "HttpOnly",
    "SameSite=Strict",
  ];
  if (value === "") attributes.push("Max-Age=0");
  if (secure) attributes.push("Secure");
  return attributes.join("; ");
}

/**
 * The session's answers: `POST` sets the cookie from an accepted bearer
 * header (401 otherwise); `DELETE` clears it; `GET` says whether tokens are
 * needed and whether the request carries an accepted one. `secure` marks
 * the cookie for HTTPS only.
 *
 * @example
 * ```ts ignore
 * if (url.pathname === SESSION_PATH) return session(request, caller, { access, cors, secure });
 * ```
 */
export function session(
  request: Request,
  caller: HttpCaller,
  options: CallerCheck & { secure: boolean },
): Response {
  const { access, secure } = options;
  const noStore = { "cache-control": "no-store" };
  switch (request.method) {
    case "POST": {
      if (!access) return new Response(null, { status: 204, headers: noStore });
      try {
        // Only a header sets the cookie: a cookie or a query does not renew itself.
        access.authenticate(
          caller.source === "header" ? caller : { peer: caller.peer },
          SESSION_PATH,
        );
      } catch (error) {
        return refusalResponse(error);
      }
      const token = caller.authorization!.replace(/^Bearer\s+/i, "");
      return new Response(null, {
        status: 204,
        headers: { ...noStore, "set-cookie": setCookie(token, secure) },
      });
    }
    case "DELETE":
      return new Response(null, {
        status: 204,
        headers: { ...noStore, "set-cookie": setCookie("", secure) },
      });
    case "GET": {
      let authenticated = access === undefined;
      if (access && caller.source !== undefined) {
        authenticated = true;
        try {
          authenticate(
            options,
            request.headers,
            request.url,
            caller,
            SESSION_PATH,
          );
        } catch {
          authenticated = false;
        }
      }
      return Response.json({ tokens: access !== undefined, authenticated }, {
        headers: noStore,
      });
    }
    default:
      return new Response(null, {
        status: 405,
        headers: { allow: "GET, POST, DELETE" },
      });
  }
}
