/**
 * TLS credentials for the server and the client, from PEM bytes. The one
 * place that knows grpc-js's credential API and its quirks under Deno.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { isIP, type Socket } from "node:net";
import { connect, createSecureContext, type SecureContext } from "node:tls";
import { ConfigError } from "../errors.ts";

/** The server's TLS material, PEM-encoded. */
export interface ServerTls {
  /** The certificate chain the server presents. */
  cert: Uint8Array;
  /** Its private key. */
  key: Uint8Array;
  /** When set, clients must present a certificate this CA signed (mTLS). */
  clientCa?: Uint8Array;
}

/** The client's TLS material, PEM-encoded. */
export interface ClientTls {
  /** CA to trust for the server's certificate; the system's roots when unset. */
  ca?: Uint8Array;
  /** Certificate to present (mTLS); needs `key`. */
  cert?: Uint8Array;
  /** Its private key. */
  key?: Uint8Array;
}

const PEM = /-----BEGIN [A-Z0-9 ]+-----/;

/** Checks that `bytes` hold PEM text; throws {@linkcode ConfigError} naming `what`. */
function pem(bytes: Uint8Array, what: string): Buffer {
  const buffer = Buffer.from(bytes);
  if (!PEM.test(buffer.toString("latin1"))) {
    throw new ConfigError(
      `${what} is not PEM: expected a "-----BEGIN …-----" block`,
    );
  }
  return buffer;
}

/**
 * Throws {@linkcode ConfigError} unless `key` is the private key of the first
 * certificate in `cert` (a mismatch would only show as failed handshakes).
 */
function checkKeyPair(cert: Buffer, key: Buffer): void {
  let matches: boolean;
  try {
    matches = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch (error) {
    throw new ConfigError(
      `Cannot load the TLS certificate and key: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (!matches) {
    throw new ConfigError(
      "The TLS key is not the certificate's private key: check that --tls-key and --tls-cert belong together",
    );
  }
}

/**
 * Checks server TLS material before anything starts: each part PEM, the key
 * the certificate's. Throws `ConfigError` saying what is wrong; returns the
 * parts as buffers.
 *
 * @example
 * ```ts
 * import { checkServerTls } from "./tls.ts";
 * import { ConfigError } from "../errors.ts";
 * const bytes = new TextEncoder().encode("not a certificate");
 * try {
 *   checkServerTls({ cert: bytes, key: bytes });
 * } catch (error) {
 *   error instanceof ConfigError; // true: "The TLS certificate is not PEM…"
 * }
 * ```
 */
export function checkServerTls(
  tls: ServerTls,
): { cert: Buffer; key: Buffer; clientCa?: Buffer } {
  const cert = pem(tls.cert, "The TLS certificate");
  const key = pem(tls.key, "The TLS key");
  const clientCa = tls.clientCa && pem(tls.clientCa, "The client CA");
  checkKeyPair(cert, key);
  return { cert, key, clientCa };
}

/**
 * Server credentials: TLS with `tls`, plaintext without. Throws
 * {@linkcode ConfigError} when the material is unusable.
 *
 * @example
 * ```ts ignore
 * server.bindAsync("[::]:50051", serverCredentials({ cert, key }), callback);
 * ```
 */
export function serverCredentials(tls?: ServerTls): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const { cert, key, clientCa } = checkServerTls(tls);
  // Deno 2.9.3's node:tls fails every handshake when the server is given no
  // CA at all ("wrong version number"): without client verification, the
  // server's own chain stands in, and is never consulted.
  return grpc.ServerCredentials.createSsl(
    clientCa ?? cert,
    [{ cert_chain: cert, private_key: key }],
    clientCa !== undefined,
  );
}

/**
 * TLS to a server named by its IP address. grpc-js hands `tls.connect` the
 * target host as `servername` (SNI), and Deno 2.9.3's node:tls refuses an IP
 * there (`options.servername must not be an IP address`; Node only warns,
 * and RFC 6066 keeps IPs out of SNI). Without `servername`, node:tls sends
 * no SNI and checks the certificate against the IP (its `IP:` subject
 * alternative names), so this connects as grpc-js does, minus that option.
 */
class IpTargetCredentials extends grpc.ChannelCredentials {
  #context: SecureContext;
  #host: string;

  constructor(context: SecureContext, host: string) {
    super();
    this.#context = context;
    this.#host = host;
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(
    _target: unknown,
    _options: grpc.ChannelOptions,
    callCredentials: grpc.CallCredentials = grpc.credentials.createEmpty(),
  ): grpc.experimental.SecureConnector {
    const secureContext = this.#context;
    const host = this.#host;
    return {
      connect: (socket: Socket) =>
        new Promise((resolve, reject) => {
          const tlsSocket = connect(
            { socket, host, secureContext, ALPNProtocols: ["h2"] },
            () => {
              if (!tlsSocket.authorized) {
                reject(tlsSocket.authorizationError);
              } else resolve({ socket: tlsSocket, secure: true });
            },
          );
          tlsSocket.on("error", reject);
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => callCredentials,
      destroy: () => {},
    };
  }
}

/**
 * Channel credentials for `host`: TLS with `tls`, plaintext without.
 *
 * @example
 * ```ts ignore
 * new GreeterClient("localhost:50051", { tls: { ca } });
 * ```
 */
export function channelCredentials(
  tls?: ClientTls,
  host?: string,
): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new ConfigError(
      "A client certificate needs its key, and a key its certificate",
    );
  }
  const ca = tls.ca && pem(tls.ca, "The TLS CA");
  const key = tls.key && pem(tls.key, "The client TLS key");
  const cert = tls.cert && pem(tls.cert, "The client TLS certificate");
  if (host !== undefined && isIP(host) !== 0) {
    return new IpTargetCredentials(
      createSecureContext({ ca, key, cert }),
      host,
    );
  }
  return grpc.credentials.createSsl(ca, key, cert);
}
