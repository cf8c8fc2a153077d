/**
 * What `greeter serve` warns about when it starts: settings that work but
 * leave the server open or fragile. Pure: the caller gathers the facts.
 *
 * @module
 */

import { isLoopback } from "../wire/address.ts";

/** The Deno release the server is built and tested on. */
export const TESTED_DENO = "2.9.3";

/** What start-up knows about the server it is starting. */
export interface StartupFacts {
  /** The interface bound (`::`, `127.0.0.1`, a name…). */
  host: string;
  /** Whether TLS is on. */
  tls: boolean;
  /** The token file, when there is one. */
  tokenFile?: {
    path: string;
    /** Its permission bits (`Deno.FileInfo.mode`), when the platform has them. */
    mode: number | null;
    /** How many of its tokens are shorter than `minBytes`. */
    short: number;
    /** The length below which a token is short. */
    minBytes: number;
  };
  /** `Deno.version.deno`. */
  denoVersion: string;
  /** With `--broker nats://…`: its servers, and whether credentials are given. */
  nats?: { servers: string; credentials: boolean };
}

/**
 * The warnings for `facts`, one sentence each, saying what to do.
 *
 * @example
 * ```ts
 * import { startupWarnings } from "./startup_warnings.ts";
 * startupWarnings({ host: "127.0.0.1", tls: false, denoVersion: "2.9.3" }); // []
 * ```
 */
export function startupWarnings(facts: StartupFacts): string[] {
  const warnings: string[] = [];
  if (!facts.tls && !facts.tokenFile && !isLoopback(facts.host)) {
    warnings.push(
      `Plaintext with no --token-file on "${facts.host}", which is not loopback: anyone who can reach it may publish and subscribe; bind --host 127.0.0.1, or set --token-file (with TLS)`,
    );
  }
  if (facts.tokenFile) warnings.push(...tokenFileWarnings(facts.tokenFile));
  if (facts.nats && !facts.nats.credentials) {
    warnings.push(
      `NATS at ${facts.nats.servers} is used with no credentials: anyone who can reach nats-server may publish events, fake ticks and presence, and delete the event stream; run nats-server with authorization (docs/instances.md) and give --nats-creds-file, --nats-nkey-file, a user and password, or --nats-token-file`,
    );
  }
  if (facts.denoVersion !== TESTED_DENO) {
    const [major, minor, patch] = facts.denoVersion.split(".").map(Number);
    const aborts = major === 2 && minor === 9 && patch >= 4 && patch <= 6;
    warnings.push(
      aborts
        ? `Deno ${facts.denoVersion} aborts the server inside nghttp2 when a client closes its channel after a few hundred calls (denoland/deno#36788): run Deno ${TESTED_DENO}`
        : `Deno ${facts.denoVersion} is not the Deno this server is tested on (${TESTED_DENO}): run ${TESTED_DENO} (npx -y deno@${TESTED_DENO}) if anything misbehaves`,
    );
  }
  return warnings;
}

/**
 * The warnings about a token file: others may read or change it, or some
 * of its tokens are short. (Also checked on each reload.)
 */
export function tokenFileWarnings(
  file: NonNullable<StartupFacts["tokenFile"]>,
): string[] {
  const warnings: string[] = [];
  if (file.mode !== null && (file.mode & 0o066) !== 0) {
    warnings.push(
      `Token file "${file.path}" can be read or changed by other users (mode ${
        (file.mode & 0o777).toString(8).padStart(4, "0")
      }): chmod 600 it`,
    );
  }
  if (file.short > 0) {
    warnings.push(
      `${file.short} token(s) in "${file.path}" are shorter than ${file.minBytes} bytes and easy to guess: make them with "openssl rand -hex 32"`,
    );
  }
  return warnings;
}
