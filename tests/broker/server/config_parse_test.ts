import assert from "node:assert/strict";
import { ConfigError } from "../../../lib/broker/server/config_schema.ts";
import { LIMIT_RANGES, parseConfig } from "../../../lib/broker/server/config_parse.ts";
import example from "../../../broker.example.json" with { type: "json" };

const TLS = { type: "tls", port: 8883, cert: "s.crt", key: "s.key" };

/** Each invalid config once, with the exact message it must produce. */
const INVALID: [what: string, config: unknown, message: string][] = [
  ["not JSON", "{", "broker.json: not valid JSON: "],
  ["not an object", [], "broker.json: the config must be an object"],
  [
    "unknown top-level key",
    { listener: [] },
    "broker.json: unknown key listener (known keys: listeners, persistence, cluster, passwordFile, aclFile, scramFile, " +
    "logLevel, logFormat, sysInterval, limits, queueQoS0, retainAvailable, checkPayloadFormat, topicAliasOut, maxQoS, " +
    "responseInformation)",
  ],
  [
    "unknown listener key",
    { listeners: [{ type: "tcp", port: 1883, hots: "0.0.0.0" }] },
    "broker.json: unknown key listeners[0].hots (known keys: type, host, port, path, cert, key, ca, " +
    "requireCertificate, useIdentityAsUsername, allowAnonymous, reusePort)",
  ],
  [
    "unknown limit",
    { limits: { maxPackets: 10 } },
    "broker.json: unknown key limits.maxPackets (known keys: " + Object.keys(LIMIT_RANGES).join(", ") + ")",
  ],
  [
    "listeners not an array",
    { listeners: {} },
    "broker.json: listeners must be an array of listener objects",
  ],
  ["no listeners", { listeners: [] }, "broker.json: listeners must list at least one listener"],
  ["listener not an object", { listeners: ["tcp"] }, "broker.json: listeners[0] must be an object"],
  ["listener without type", { listeners: [{ port: 1 }] }, "broker.json: listeners[0].type is required"],
  [
    "bad listener type",
    { listeners: [{ type: "quic", port: 1 }] },
    'broker.json: listeners[0].type must be one of "tcp", "tls", "ws", "wss"',
  ],
  ["listener without port", { listeners: [{ type: "tcp" }] }, "broker.json: listeners[0].port is required"],
  [
    "port out of range",
    { listeners: [{ type: "tcp", port: 1883 }, { type: "ws", port: 70000 }] },
    "broker.json: listeners[1].port must be an integer from 0 to 65535",
  ],
  [
    "port as a string",
    { listeners: [{ type: "tcp", port: "1883" }] },
    "broker.json: listeners[0].port must be an integer from 0 to 65535",
  ],
  [
    "fractional port",
    { listeners: [{ type: "tcp", port: 1883.5 }] },
    "broker.json: listeners[0].port must be an integer from 0 to 65535",
  ],
  [
    "empty host",
    { listeners: [{ type: "tcp", port: 1, host: "" }] },
    "broker.json: listeners[0].host must be a non-empty string",
  ],
  [
    "allowAnonymous as a string",
    { listeners: [{ type: "tcp", port: 1, allowAnonymous: "yes" }] },
    "broker.json: listeners[0].allowAnonymous must be true or false",
  ],
  [
    "tls without cert",
    { listeners: [{ type: "tls", port: 8883, key: "s.key" }] },
    "broker.json: listeners[0].cert is required for a tls listener",
  ],
  [
    "wss without key",
    { listeners: [{ type: "wss", port: 8081, cert: "s.crt" }] },
    "broker.json: listeners[0].key is required for a wss listener",
  ],
  [
    "cert on tcp",
    { listeners: [{ type: "tcp", port: 1, cert: "s.crt" }] },
    "broker.json: listeners[0].cert is only for tls and wss listeners",
  ],
  [
    "path on tcp",
    { listeners: [{ type: "tcp", port: 1, path: "/mqtt" }] },
    "broker.json: listeners[0].path is only for ws and wss listeners",
  ],
  [
    "relative path",
    { listeners: [{ type: "ws", port: 1, path: "mqtt" }] },
    'broker.json: listeners[0].path must start with "/", got "mqtt"',
  ],
  [
    "reusePort as a string",
    { listeners: [{ type: "tcp", port: 1, reusePort: "yes" }] },
    "broker.json: listeners[0].reusePort must be true or false",
  ],
  [
    "reusePort on a tls listener that asks for client certificates",
    { listeners: [{ ...TLS, ca: "ca.crt", requireCertificate: true, reusePort: true }] },
    'broker.json: listeners[0].reusePort is not supported with "requireCertificate": true',
  ],
  [
    "requireCertificate without ca",
    { listeners: [{ ...TLS, requireCertificate: true }] },
    'broker.json: listeners[0].ca is required with "requireCertificate": true',
  ],
  [
    "ca without requireCertificate",
    { listeners: [{ ...TLS, ca: "ca.crt" }] },
    'broker.json: listeners[0].ca needs "requireCertificate": true',
  ],
  [
    "useIdentityAsUsername without requireCertificate",
    { listeners: [{ ...TLS, useIdentityAsUsername: true }] },
    'broker.json: listeners[0].useIdentityAsUsername needs "requireCertificate": true',
  ],
  [
    "requireCertificate on wss",
    { listeners: [{ type: "wss", port: 1, cert: "c", key: "k", requireCertificate: true }] },
    "broker.json: listeners[0].requireCertificate is only supported on tls listeners (Deno cannot ask WebSocket " +
    "clients for certificates)",
  ],
  [
    "two listeners on one port",
    { listeners: [{ type: "tcp", port: 1883 }, { type: "ws", port: 0 }, { type: "ws", port: 1883 }] },
    "broker.json: listeners[2].port 1883 is already used by listeners[0]",
  ],
  [
    "bad persistence",
    { persistence: "redis://localhost" },
    'broker.json: persistence must be "memory" or "sqlite:PATH", got "redis://localhost"',
  ],
  ["passwordFile not a string", { passwordFile: 1 }, "broker.json: passwordFile must be a non-empty string"],
  [
    "bad log level",
    { logLevel: "verbose" },
    'broker.json: logLevel must be one of "error", "warn", "info", "debug"',
  ],
  ["unknown log format", { logFormat: "xml" }, 'broker.json: logFormat must be one of "text", "json"'],
  [
    "negative sysInterval",
    { sysInterval: -1 },
    "broker.json: sysInterval must be an integer from 0 to 86400",
  ],
  ["limits not an object", { limits: 5 }, "broker.json: limits must be an object"],
  ["scramFile empty", { scramFile: "" }, "broker.json: scramFile must be a non-empty string"],
  ["queueQoS0 as a string", { queueQoS0: "true" }, "broker.json: queueQoS0 must be true or false"],
  [
    "retainAvailable as a number",
    { retainAvailable: 0 },
    "broker.json: retainAvailable must be true or false",
  ],
  [
    "checkPayloadFormat null",
    { checkPayloadFormat: null },
    "broker.json: checkPayloadFormat must be true or false",
  ],
  ["topicAliasOut as a string", { topicAliasOut: "no" }, "broker.json: topicAliasOut must be true or false"],
  ["maxQoS 3", { maxQoS: 3 }, "broker.json: maxQoS must be an integer from 0 to 2"],
  ["maxQoS 1.5", { maxQoS: 1.5 }, "broker.json: maxQoS must be an integer from 0 to 2"],
  [
    "responseInformation not a string",
    { responseInformation: 7 },
    "broker.json: responseInformation must be a non-empty string",
  ],
  [
    "responseInformation with U+0000",
    { responseInformation: "a\u0000b" },
    "broker.json: responseInformation must be well-formed text of at most 65535 UTF-8 bytes, without U+0000",
  ],
  [
    "responseInformation too long",
    { responseInformation: "é".repeat(32768) },
    "broker.json: responseInformation must be well-formed text of at most 65535 UTF-8 bytes, without U+0000",
  ],
  [
    "maxPacketSize too small",
    { limits: { maxPacketSize: 10 } },
    "broker.json: limits.maxPacketSize must be an integer from 16 to 268435460",
  ],
  [
    "negative rate",
    { limits: { connectRatePerAddress: -1 } },
    `broker.json: limits.connectRatePerAddress must be a number from 0 to ${Number.MAX_SAFE_INTEGER}`,
  ],
];

Deno.test("parseConfig() rejects each invalid config with a message naming the file and the key", () => {
  for (const [what, config, message] of INVALID) {
    const text = typeof config === "string" ? config : JSON.stringify(config);
    assert.throws(() => parseConfig(text, "broker.json"), (error: Error) => {
      assert.ok(error instanceof ConfigError, what);
      if (what === "not JSON") assert.ok(error.message.startsWith(message), `${what}: ${error.message}`);
      else assert.equal(error.message, message, what);
      return true;
    });
  }
});

Deno.test("parseConfig() accepts broker.example.json, which uses every key", () => {
  const config = parseConfig(JSON.stringify(example), "broker.example.json");
  assert.deepEqual(Object.keys(config).sort(), [
    "aclFile",
    "checkPayloadFormat",
    "limits",
    "listeners",
    "logFormat",
    "logLevel",
    "maxQoS",
    "passwordFile",
    "persistence",
    "queueQoS0",
    "responseInformation",
    "retainAvailable",
    "scramFile",
    "sysInterval",
    "topicAliasOut",
  ]);
  assert.deepEqual(Object.keys(config.limits!).sort(), Object.keys(LIMIT_RANGES).sort());
  assert.deepEqual(config.listeners!.map((l) => l.type), ["tcp", "tls", "ws", "wss"]);
  const listenerKeys = new Set(config.listeners!.flatMap((l) => Object.keys(l)));
  assert.equal(listenerKeys.size, 11, [...listenerKeys].join(", "));
});

Deno.test("parseConfig() keeps what it validated; an empty object is a valid config", () => {
  assert.deepEqual(parseConfig("{}", "empty.json"), {});
  assert.deepEqual(
    parseConfig(
      JSON.stringify({
        listeners: [{ type: "ws", port: 0, host: "::1", allowAnonymous: false }],
        logLevel: "debug",
      }),
      "x.json",
    ),
    { listeners: [{ type: "ws", port: 0, host: "::1", allowAnonymous: false }], logLevel: "debug" },
  );
});
