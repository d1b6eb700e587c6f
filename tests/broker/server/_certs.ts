/**
 * Throw-away certificates for the TLS tests, made with `openssl` in a temporary directory: a CA, a server
 * certificate for 127.0.0.1 and localhost, a client certificate with a CN, and a client certificate from
 * another CA (which the broker must refuse).
 *
 * @module
 */

import { join } from "node:path";

/** PEM files and their text. */
export interface TestCertificates {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** CN = {@linkcode CLIENT_CN}, signed by the CA. */
  readonly clientCert: string;
  readonly clientKey: string;
  /** Signed by a CA the broker does not trust. */
  readonly strangerCert: string;
  readonly strangerKey: string;
  /** The stranger CA, and a server certificate for 127.0.0.1 it signed (a second server identity). */
  readonly strangerCa: string;
  readonly otherServerCert: string;
  readonly otherServerKey: string;
  /** Removes the directory. */
  remove(): Promise<void>;
}

/** The CN in the client certificate. */
export const CLIENT_CN = "device-42";

/** Why certificates cannot be made here, or undefined when they can. */
export function certificatesUnavailable(): string | undefined {
  if (Deno.permissions.querySync({ name: "run", command: "openssl" }).state !== "granted") {
    return "needs --allow-run (openssl)";
  }
  if (Deno.permissions.querySync({ name: "write" }).state !== "granted") return "needs --allow-write";
  if (Deno.permissions.querySync({ name: "read" }).state !== "granted") return "needs --allow-read";
  try {
    new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" }).outputSync();
    return undefined;
  } catch {
    return "needs openssl installed";
  }
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!success) throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
}

async function issue(dir: string, name: string, cn: string, ca: string, extensions: string): Promise<void> {
  await Deno.writeTextFile(join(dir, `${name}.ext`), extensions);
  await openssl(
    dir,
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${cn}`,
  );
  await openssl(
    dir,
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    // -set_serial rather than -CAcreateserial: certificates are issued in parallel, and the serial file races.
    "-set_serial",
    String(crypto.getRandomValues(new Uint32Array(1))[0]),
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  );
}

async function authority(dir: string, name: string, cn: string): Promise<void> {
  await openssl(
    dir,
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    `/CN=${cn}`,
  );
}

/** Makes the certificates (about a second of openssl). */
export async function makeCertificates(): Promise<TestCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "mqtt_tls_test_" });
  try {
    await Promise.all([authority(dir, "ca", "Test CA"), authority(dir, "stranger_ca", "Stranger CA")]);
    await Promise.all([
      issue(
        dir,
        "server",
        "localhost",
        "ca",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
      ),
      issue(dir, "client", CLIENT_CN, "ca", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"),
      issue(
        dir,
        "other_server",
        "localhost",
        "stranger_ca",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
      ),
      issue(
        dir,
        "stranger",
        "stranger",
        "stranger_ca",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
      ),
    ]);
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const read = (name: string) => Deno.readTextFile(join(dir, name));
  return {
    dir,
    caFile: join(dir, "ca.crt"),
    serverCertFile: join(dir, "server.crt"),
    serverKeyFile: join(dir, "server.key"),
    ca: await read("ca.crt"),
    serverCert: await read("server.crt"),
    serverKey: await read("server.key"),
    clientCert: await read("client.crt"),
    clientKey: await read("client.key"),
    strangerCert: await read("stranger.crt"),
    strangerKey: await read("stranger.key"),
    strangerCa: await read("stranger_ca.crt"),
    otherServerCert: await read("other_server.crt"),
    otherServerKey: await read("other_server.key"),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
