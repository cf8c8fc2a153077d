/**
 * A throwaway certificate authority made with openssl: a CA, a server
 * certificate for localhost and 127.0.0.1, a client certificate, and an
 * unrelated self-signed pair.
 *
 * @module
 */

import { join } from "node:path";

function opensslMissing(): string | undefined {
  try {
    const { success } = new Deno.Command("openssl", { args: ["version"] })
      .outputSync();
    return success ? undefined : "openssl version failed";
  } catch {
    return "openssl is not installed (apt-get install openssl)";
  }
}

/** Why the TLS tests cannot run here, or undefined when they can. */
export const OPENSSL_MISSING: string | undefined = opensslMissing();

/** PEM files of a throwaway CA; dispose of it to delete them. */
export interface TestPki extends AsyncDisposable {
  /** The directory holding the files. */
  dir: string;
  /** Path of each PEM file. */
  files: Record<
    | "ca"
    | "serverCert"
    | "serverKey"
    | "clientCert"
    | "clientKey"
    | "otherCert"
    | "otherKey",
    string
  >;
  /** The bytes of each file. */
  read(file: keyof TestPki["files"]): Uint8Array;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir }).output();
  if (!out.success) {
    throw new Error(
      `openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** Makes a CA, a localhost server certificate and a client certificate. */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "greeter_pki_" });
  const selfSigned = (name: string, cn: string) =>
    openssl(dir, [
      "req",
      "-x509",
      ...EC,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-subj",
      `/CN=${cn}`,
    ]);
  const signed = async (name: string, cn: string, extensions: string) => {
    await Deno.writeTextFile(join(dir, `${name}.ext`), extensions);
    await openssl(dir, [
      "req",
      ...EC,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${cn}`,
    ]);
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    ]);
  };
  await selfSigned("ca", "greeter test CA");
  await signed(
    "server",
    "localhost",
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
  );
  await signed(
    "client",
    "greeter test client",
    "extendedKeyUsage=clientAuth\n",
  );
  await selfSigned("other", "someone else");
  const files = {
    ca: join(dir, "ca.pem"),
    serverCert: join(dir, "server.pem"),
    serverKey: join(dir, "server.key"),
    clientCert: join(dir, "client.pem"),
    clientKey: join(dir, "client.key"),
    otherCert: join(dir, "other.pem"),
    otherKey: join(dir, "other.key"),
  };
  return {
    dir,
    files,
    read: (file) => Deno.readFileSync(files[file]),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}
