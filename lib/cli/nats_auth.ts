/**
 * Who `greeter serve` is to nats-server: the one way of authenticating its
 * settings name (a user and password, a token, an nkey seed or a `.creds`
 * file), resolved from the URL, flags, files and the environment, or none.
 * Pure: the files are named here and read by the broker's opener.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import type { SettingValues } from "./setting.ts";
import type { SERVE_SETTINGS } from "./settings.ts";

/** How the broker authenticates to NATS; secrets stay in files until read. */
export type NatsAuth =
  | { kind: "none" }
  | {
    kind: "user";
    user: string;
    /** The password itself (the URL or `GREETER_NATS_PASSWORD`)… */
    password?: string;
    /** …or the file that holds it. */
    passwordFile?: string;
  }
  | { kind: "token"; file: string }
  | { kind: "nkey"; file: string }
  | { kind: "creds"; file: string };

/** The settings `natsAuth` reads. */
export type NatsAuthSettings = Pick<
  SettingValues<typeof SERVE_SETTINGS>,
  | "brokerUrl"
  | "natsUser"
  | "natsPassword"
  | "natsPasswordFile"
  | "natsTokenFile"
  | "natsNkeyFile"
  | "natsCredsFile"
>;

/**
 * The NATS authentication `config` names; throws {@linkcode ConfigError}
 * when it names more than one way, a user without a password (or the
 * reverse), or two different users.
 *
 * @example
 * ```ts
 * import { natsAuth } from "./nats_auth.ts";
 * natsAuth({
 *   brokerUrl: { kind: "nats", servers: ["127.0.0.1:4222"], user: "greeter", password: "s3cret" },
 *   natsUser: undefined, natsPassword: undefined, natsPasswordFile: undefined,
 *   natsTokenFile: undefined, natsNkeyFile: undefined, natsCredsFile: undefined,
 * }); // { kind: "user", user: "greeter", password: "s3cret", passwordFile: undefined }
 * ```
 */
export function natsAuth(config: NatsAuthSettings): NatsAuth {
  const url = config.brokerUrl.kind === "nats" ? config.brokerUrl : undefined;
  if (
    url?.user !== undefined && config.natsUser !== undefined &&
    url.user !== config.natsUser
  ) {
    throw new ConfigError(
      `Two NATS users given: "${url.user}" in --broker and "${config.natsUser}" in --nats-user; give one`,
    );
  }
  const user = url?.user ?? config.natsUser;
  const passwords = [
    url?.password !== undefined && "the --broker URL",
    config.natsPassword !== undefined && "GREETER_NATS_PASSWORD",
    config.natsPasswordFile !== undefined && "--nats-password-file",
  ].filter((given) => given !== false);
  if (passwords.length > 1) {
    throw new ConfigError(
      `Two NATS passwords given (${
        passwords.join(" and ")
      }): give the password one way`,
    );
  }
  if (user === undefined && passwords.length > 0) {
    throw new ConfigError(
      `A NATS password (${
        passwords[0]
      }) needs a user: give --nats-user, or nats://USER:PASSWORD@HOST:PORT`,
    );
  }
  if (user !== undefined && passwords.length === 0) {
    throw new ConfigError(
      `NATS user "${user}" has no password: put it in the URL (nats://USER:PASSWORD@HOST:PORT), set GREETER_NATS_PASSWORD, or give --nats-password-file (for a token, use --nats-token-file)`,
    );
  }
  const ways: NatsAuth[] = [];
  if (user !== undefined) {
    ways.push({
      kind: "user",
      user,
      password: url?.password ?? config.natsPassword,
      passwordFile: config.natsPasswordFile,
    });
  }
  if (config.natsTokenFile !== undefined) {
    ways.push({ kind: "token", file: config.natsTokenFile });
  }
  if (config.natsNkeyFile !== undefined) {
    ways.push({ kind: "nkey", file: config.natsNkeyFile });
  }
  if (config.natsCredsFile !== undefined) {
    ways.push({ kind: "creds", file: config.natsCredsFile });
  }
  if (ways.length > 1) {
    throw new ConfigError(
      `Give NATS one way to authenticate, not ${
        ways.map((way) => WAY_NAMES[way.kind]).join(" and ")
      }`,
    );
  }
  return ways[0] ?? { kind: "none" };
}

const WAY_NAMES: Record<NatsAuth["kind"], string> = {
  none: "none",
  user: "a user and password",
  token: "a token (--nats-token-file)",
  nkey: "an nkey (--nats-nkey-file)",
  creds: "a credentials file (--nats-creds-file)",
};
