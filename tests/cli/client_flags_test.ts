import assert from "node:assert/strict";
import {
  clientOptions,
  CONNECTION_FLAGS,
  extractDefines,
  parseFlags,
  protocolVersion,
  UsageError,
} from "../../cli/_flags.ts";
import { tokenize } from "../../cli/shell.ts";
import { PUBLISH_DEFINES } from "./_cli.ts";

Deno.test("extractDefines() takes -D groups out, one or two values each, typed by the property table", () => {
  const { rest, defines } = extractDefines([
    "-t",
    "x",
    ...PUBLISH_DEFINES,
    "-D",
    "connect",
    "session-expiry-interval",
    "120",
    "-D",
    "publish",
    "correlation-data",
    "abc",
    "-D",
    "subscribe",
    "subscription-identifier",
    "7",
    "-m",
    "y",
  ]);
  assert.deepEqual(rest, ["-t", "x", "-m", "y"]);
  assert.deepEqual(defines.publish?.userProperties, [["k", "v"]]);
  assert.equal(defines.publish?.messageExpiryInterval, 60);
  assert.deepEqual(defines.publish?.correlationData, new TextEncoder().encode("abc"));
  assert.equal(defines.connect?.sessionExpiryInterval, 120);
  assert.deepEqual(defines.subscribe?.subscriptionIdentifiers, [7]);
});

Deno.test("extractDefines() refuses unknown commands and properties, misplaced ones and bad values", () => {
  const cases: [string[], RegExp][] = [
    [["-D", "publish"], /needs a command, a property name and a value/],
    [["-D", "frob", "content-type", "x"], /unknown command "frob"/],
    [["-D", "publish", "colour", "red"], /unknown property "colour"/],
    [["-D", "publish", "session-expiry-interval", "5"], /not allowed in publish/],
    [["-D", "publish", "topic-alias", "1"], /managed by the client/],
    [["-D", "publish", "user-property", "k"], /needs 2 value/],
    [["-D", "connect", "receive-maximum", "70000"], /from 0 to 65535/],
    [["-D", "publish", "payload-format-indicator", "x"], /whole number/],
  ];
  for (const [args, message] of cases) assert.throws(() => extractDefines(args), message, args.join(" "));
});

Deno.test("protocolVersion() takes mosquitto's spellings", () => {
  assert.deepEqual(["31", "mqttv31", "311", "mqttv311", "5", "mqttv5", undefined].map(protocolVersion), [
    3,
    3,
    4,
    4,
    5,
    5,
    5,
  ]);
  assert.throws(() => protocolVersion("6"), UsageError);
});

Deno.test("clientOptions(): -c needs -i; with v5 it means a session that never expires unless -x", async () => {
  const parse = (args: string[]) => parseFlags(args, CONNECTION_FLAGS).values;
  await assert.rejects(clientOptions(parse(["-c"]), {}), /-c needs a client id/);
  const persistent = await clientOptions(parse(["-c", "-i", "me"]), {});
  assert.equal(persistent.options.cleanStart, false);
  assert.equal(persistent.options.properties?.sessionExpiryInterval, 4_294_967_295);
  const expiring = await clientOptions(parse(["-c", "-i", "me", "-x", "30", "-p", "1884", "-h", "h"]), {});
  assert.equal(expiring.options.properties?.sessionExpiryInterval, 30);
  assert.deepEqual(expiring.endpoint, { host: "h", port: 1884, label: "h:1884" });
  const v3 = await clientOptions(parse(["-c", "-i", "me", "-V", "311"]), {});
  assert.equal(v3.options.properties, undefined);
  await assert.rejects(clientOptions(parse(["-x", "30", "-V", "311"]), {}), /needs MQTT 5/);
  await assert.rejects(clientOptions(parse(["--will-qos", "1"]), {}), /need --will-topic/);
  await assert.rejects(clientOptions(parse(["-p", "0"]), {}), /-p must be a whole number from 1 to 65535/);
});

Deno.test("clientOptions() builds the will from --will-* flags and -D will properties", async () => {
  const values = parseFlags(
    ["--will-topic", "w", "--will-payload", "bye", "--will-qos", "2", "--will-retain", "-u", "u", "-P", "p"],
    CONNECTION_FLAGS,
  ).values;
  const { options } = await clientOptions(values, { will: { willDelayInterval: 5 } });
  assert.deepEqual(options.will, {
    topic: "w",
    payload: "bye",
    qos: 2,
    retain: true,
    properties: { willDelayInterval: 5 },
  });
  assert.equal(options.username, "u");
  assert.equal(options.password, "p");
});

Deno.test("tokenize() splits on blanks, groups quotes and honours backslashes", () => {
  assert.deepEqual(tokenize(`pub a/b "hello  world" 'it''s' x\\ y ""`), [
    "pub",
    "a/b",
    "hello  world",
    "its",
    "x y",
    "",
  ]);
  assert.deepEqual(tokenize(`  `), []);
  assert.deepEqual(tokenize(`a "say \\"hi\\""`), ["a", 'say "hi"']);
  assert.throws(() => tokenize(`pub "open`), /unterminated " quote/);
});
