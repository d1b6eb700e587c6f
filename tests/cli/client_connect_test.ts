/**
 * Where `pub` and `sub` connect, as a Mosquitto user writes it: `-L` URLs (mqtt, ws, wss), `--unix`, TLS files
 * named relative to the directory `deno task` was started in (`INIT_CWD`), `--insecure`, `--version`, and `-d`
 * printing every packet with its v5 properties. Real subprocesses against our broker's listeners. Needs
 * --allow-run (for `deno`, and `openssl` for the TLS cases); without it the tests are registered as ignored.
 */

import assert from "node:assert/strict";
import { Broker } from "../../lib/broker/broker.ts";
import { certificatesUnavailable, makeCertificates } from "../broker/server/_certs.ts";
import { withListeners } from "../broker/server/_helpers.ts";
import { CLI_PERMISSIONS, CliProcess, cliTest, cliUnavailable, runCli, withUnixBroker } from "./_cli.ts";

const unavailable = cliUnavailable();
const noCerts = unavailable ?? certificatesUnavailable();

/** A `sub -C 1` on `url` (plus `args`), started and subscribed. */
async function subscriber(url: string, args: readonly string[] = []): Promise<CliProcess> {
  const sub = new CliProcess(["sub", "-L", url, "-C", "1", "-v", "-d", ...args]);
  await sub.waitForStderr("<- SUBACK");
  return sub;
}

cliTest(
  "-L mqtt://user:pass@host:port/topic gives pub and sub the address, credentials and topic",
  async () => {
    const broker = new Broker();
    const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const sub = await subscriber(`mqtt://reader:secret@127.0.0.1:${port}/l/%23`); // %23 is taken as is: a filter "l/%23"
      const sub2 = await subscriber(`mqtt://127.0.0.1:${port}/l/#`);
      const pub = await runCli([
        "pub",
        "-L",
        `mqtt://writer:p%40ss@127.0.0.1:${port}/l/x`,
        "-m",
        "via url",
        "-d",
      ]);
      assert.equal(pub.code, 0, pub.stderr);
      assert.match(
        pub.stderr,
        /-> CONNECT v5 clientId="deno-[0-9a-f]+" cleanStart=1 keepAlive=60 username=writer password=\*\*\*/,
      );
      const result = await sub2.result();
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "l/x via url\n");
      sub.kill("SIGINT");
      const first = await sub.result();
      assert.match(first.stderr, /username=reader password=\*\*\*/);
      assert.match(first.stderr, /-> SUBSCRIBE id=1 l\/%23\(qos=0\)/);
    } finally {
      await broker.close();
    }
  },
);

cliTest("-L: bad URLs and -L with -h are usage errors (exit 2) before connecting", async () => {
  const cases: [string[], RegExp][] = [
    [["-L", "http://h/t"], /^Error: -L must look like mqtt:\/\//],
    [["-L", "mqtt://h:99999/t"], /^Error: -L: the port must be a whole number from 1 to 65535/],
    [
      ["-L", "mqtt://127.0.0.1:1/t", "-h", "x"],
      /^Error: -L gives the host and port: leave out -h, -p and --unix/,
    ],
    [["-L", "mqtt://127.0.0.1:1/t", "-t", "u"], /^Error: the topic is given twice/],
    [["-L", "mqtt://127.0.0.1:1/t", "--tls"], /^Error: -L mqtt:\/\/ is plain TCP: use mqtts:\/\/ for TLS/],
    [["-L", "mqtt://127.0.0.1:1"], /^Error: -t TOPIC \(or -L mqtt:\/\/HOST\/TOPIC\) is required/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(["pub", ...args, "-m", "x"]);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});

cliTest("-L ws://host:port/mqtt: pub and sub over the broker's WebSocket listener", async () => {
  await withListeners([{ type: "ws", hostname: "127.0.0.1", port: 0 }], async (running) => {
    const url = running.listeners[0]!.url; // ws://127.0.0.1:PORT/mqtt
    const sub = await subscriber(url, ["-t", "w/#"]);
    const pub = await runCli(["pub", "-L", url, "-t", "w/1", "-m", "over ws", "-q", "1"]);
    assert.equal(pub.code, 0, pub.stderr);
    const result = await sub.result();
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "w/1 over ws\n");
    // Without a path, /mqtt is used (the broker's default WebSocket path).
    const bare = await runCli(["pub", "-L", url.replace(/\/mqtt$/, ""), "-t", "w/2", "-m", "x"]);
    assert.equal(bare.code, 0, bare.stderr);
    const wrong = await runCli(["pub", "-L", url.replace(/\/mqtt$/, "/nothing"), "-t", "w/2", "-m", "x"]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^Error: connection refused by ws:\/\/127\.0\.0\.1:\d+\/nothing/);
  });
});

cliTest(
  "-L wss:// with --cafile, and mqtts:// with --cafile read from INIT_CWD (deno task's caller)",
  async () => {
    const certs = await makeCertificates();
    try {
      const cert = { cert: certs.serverCert, key: certs.serverKey };
      await withListeners([
        { type: "wss", hostname: "127.0.0.1", port: 0, ...cert },
        { type: "tls", hostname: "127.0.0.1", port: 0, ...cert },
      ], async (running) => {
        const wss = running.listeners[0]!.url.replace("127.0.0.1", "localhost");
        const tlsPort = new URL(running.listeners[1]!.url).port;
        const sub = await subscriber(wss, ["-t", "s/#", "--cafile", certs.caFile]);
        const caName = certs.caFile.slice(certs.dir.length + 1);
        // As `cd certs && deno task client pub --cafile ca.pem …`: deno task runs in the repository root and sets
        // INIT_CWD to the caller's directory.
        const pub = await runCli(
          ["pub", "-L", `mqtts://localhost:${tlsPort}/s/1`, "--cafile", caName, "-m", "over tls"],
          { env: { INIT_CWD: certs.dir } },
        );
        assert.equal(pub.code, 0, pub.stderr);
        const result = await sub.result();
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, "s/1 over tls\n");
        // Without permission to read INIT_CWD the name stays relative to the current directory, and says so.
        const noEnv = await runCli(
          ["pub", "-L", `mqtts://localhost:${tlsPort}/s/1`, "--cafile", caName, "-m", "x"],
          { env: { INIT_CWD: certs.dir }, permissions: ["--allow-net", "--allow-read"] },
        );
        assert.equal(noEnv.code, 2);
        assert.match(noEnv.stderr, new RegExp(`^Error: --cafile: cannot read ${caName}: `));
        // A relative name that does not exist names where it was looked for.
        const missing = await runCli(
          ["pub", "-p", tlsPort, "--cafile", "nothing.pem", "-t", "s/1", "-m", "x"],
          { env: { INIT_CWD: certs.dir } },
        );
        assert.equal(missing.code, 2);
        assert.ok(
          missing.stderr.startsWith(`Error: --cafile: cannot read nothing.pem (${certs.dir}/nothing.pem): `),
          missing.stderr,
        );
      });
    } finally {
      await certs.remove();
    }
  },
  noCerts,
);

cliTest("--unix PATH: pub and sub over a Unix socket (with Deno's write permission on it)", async () => {
  await withUnixBroker(async (path, dir) => {
    const permissions = [...CLI_PERMISSIONS, `--allow-write=${path}`];
    const sub = new CliProcess(["sub", "--unix", path, "-t", "u", "-C", "1", "-d"], { permissions });
    await sub.waitForStderr("<- SUBACK");
    const pub = await runCli(["pub", "--unix", "mqtt.sock", "-t", "u", "-m", "over unix"], {
      permissions,
      env: { INIT_CWD: dir },
    });
    assert.equal(pub.code, 0, pub.stderr);
    const result = await sub.result();
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "over unix\n");
    // With the task's permissions alone, Deno refuses the socket: the error says which permission is missing.
    const denied = await runCli(["pub", "--unix", path, "-t", "u", "-m", "x"]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /^Error: permission denied: .*write access.*--allow-write/);
    const both = await runCli(["pub", "--unix", path, "-h", "x", "-t", "u", "-m", "x"]);
    assert.equal(both.code, 2);
  });
});

cliTest(
  "pub -f FILE reads a relative name from INIT_CWD, and from the current directory without it",
  async () => {
    const dir = await Deno.makeTempDir();
    const broker = new Broker();
    const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      await Deno.writeTextFile(`${dir}/payload.txt`, "from a file");
      const at = ["-h", "127.0.0.1", "-p", String(port)];
      const sub = new CliProcess(["sub", ...at, "-t", "f", "-C", "1", "-d"]);
      await sub.waitForStderr("<- SUBACK");
      const pub = await runCli(["pub", ...at, "-t", "f", "-f", "payload.txt"], { env: { INIT_CWD: dir } });
      assert.equal(pub.code, 0, pub.stderr);
      assert.equal((await sub.result()).stdout, "from a file\n");
      const outside = await runCli(["pub", ...at, "-t", "f", "-f", "payload.txt"]); // INIT_CWD is the repository
      assert.equal(outside.code, 2);
      assert.match(outside.stderr, /^Error: -f: cannot read payload\.txt \(.*payload\.txt\): /);
    } finally {
      await broker.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** Why a TLS listener on ::1 cannot run here (no IPv6 loopback), or undefined. */
function ipv6Unavailable(): string | undefined {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return undefined;
  } catch {
    return "needs an IPv6 loopback (::1)";
  }
}

cliTest(
  "--insecure skips the certificate host name check for TLS (the chain is still checked); not for wss://",
  async () => {
    const certs = await makeCertificates();
    try {
      // The server certificate names localhost and 127.0.0.1, not ::1.
      const cert = { cert: certs.serverCert, key: certs.serverKey };
      await withListeners([{ type: "tls", hostname: "::1", port: 0, ...cert }], async (running) => {
        const port = /:(\d+)$/.exec(running.listeners[0]!.url)![1]!;
        const args = [
          "pub",
          "-h",
          "::1",
          "-p",
          port,
          "--tls",
          "--cafile",
          certs.caFile,
          "-t",
          "i",
          "-m",
          "x",
        ];
        const checked = await runCli(args);
        assert.equal(checked.code, 1, checked.stderr);
        assert.match(checked.stderr, /^Error: .*(NotValidForName|certificate)/i);
        const insecure = await runCli([...args, "--insecure"]);
        assert.equal(insecure.code, 0, insecure.stderr);
        const untrusted = await runCli([
          "pub",
          "-h",
          "::1",
          "-p",
          port,
          "--tls",
          "-t",
          "i",
          "-m",
          "x",
          "--insecure",
        ]);
        assert.equal(untrusted.code, 1, "an unknown CA is still refused");
      });
    } finally {
      await certs.remove();
    }
    const plain = await runCli(["sub", "-t", "x", "--insecure", "-p", "1"]);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /^Error: --insecure is for TLS/);
    const wss = await runCli(["sub", "-L", "wss://localhost:1/mqtt", "-t", "x", "--insecure"]);
    assert.equal(wss.code, 2);
    assert.match(wss.stderr, /^Error: --insecure does not go with wss:\/\/: Deno's WebSocket cannot skip/);
    assert.match(wss.stderr, /--unsafely-ignore-certificate-errors=HOST/);
  },
  noCerts ?? ipv6Unavailable(),
);

cliTest("--version prints the version for the client and each command", async () => {
  for (
    const args of [["--version"], ["pub", "--version"], ["sub", "--version"], ["rr", "--version"], [
      "shell",
      "--version",
    ]]
  ) {
    const result = await runCli(args);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^deno task client( \w+)?: deno-mqtt \d+\.\d+\.\d+ \(Deno \d+\.\d+\.\d+\)\n$/,
      args.join(" "),
    );
  }
});

cliTest("-d prints every packet sent and received, decoded, with the v5 properties", async () => {
  const broker = new Broker();
  const { port } = await broker.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const result = await runCli([
      "pub",
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-t",
      "d/1",
      "-m",
      "hi",
      "-q",
      "2",
      "-d",
      "-D",
      "publish",
      "user-property",
      "k",
      "v",
      "-D",
      "connect",
      "receive-maximum",
      "10",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stderr.trimEnd().split("\n");
    assert.match(lines[0]!, /^-> CONNECT v5 .* receiveMaximum=10$/);
    assert.match(lines[1]!, /^<- CONNACK sessionPresent=0 Success \(0x00\) .*receiveMaximum=\d+/);
    assert.match(lines[2]!, /^-> PUBLISH d\/1 qos=2 id=1 retain=0 "hi" \(2 bytes\) userProperties=k=v/);
    assert.match(lines[3]!, /^<- PUBREC id=1 NoMatchingSubscribers \(0x10\)$/); // nobody subscribed
    assert.match(lines[4]!, /^-> PUBREL id=1 Success \(0x00\)$/);
    assert.match(lines[5]!, /^<- PUBCOMP id=1 Success \(0x00\)$/);
    assert.match(lines[6]!, /^-> DISCONNECT Success \(0x00\)$/);
    assert.equal(lines.length, 7);
  } finally {
    await broker.close();
  }
});
