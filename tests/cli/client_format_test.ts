import assert from "node:assert/strict";
import { UsageError } from "../../cli/_flags.ts";
import { describeError, formatPacket, jsonMessage, payloadPreview } from "../../cli/_format.ts";
import { compileFormat, PayloadNotJsonError, renderMessage } from "../../cli/_message_format.ts";
import type { MqttMessage } from "../../lib/client/inbox.ts";
import { MqttError } from "../../lib/mqtt_error.ts";

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const message: MqttMessage = {
  topic: "a/b",
  payload: new TextEncoder().encode("hi"),
  qos: 1,
  retain: true,
  dup: false,
  packetId: 9,
};
const when = new Date("2024-01-02T03:04:05.678Z");

function formatMessage(m: MqttMessage, format: string, now: Date, pretty = false): Uint8Array {
  return renderMessage(m, compileFormat(format), { now, pretty });
}

Deno.test("renderMessage() expands mosquitto_sub's -F codes and escapes", () => {
  assert.equal(
    text(formatMessage(message, "%t %p %q %r %l %m %% %x %X\\t|\\n", when)),
    "a/b hi 1 1 2 9 % 6869 6869\t|\n",
  );
  // As mosquitto_sub: %I in local time with the offset (this process's zone), %U with nanoseconds.
  assert.match(text(formatMessage(message, "%I", when)), /^2024-01-0[123]T\d\d:\d\d:05[+-]\d{4}$/);
  assert.equal(text(formatMessage(message, "%U", when)), "1704164645.678000000");
  assert.equal(text(formatMessage(message, "\\0\\e\\\\", when)), "\0\x1b\\");
});

Deno.test("renderMessage() writes a binary payload byte for byte", () => {
  const binary = { ...message, payload: Uint8Array.of(0xff, 0x00, 0x80) };
  assert.deepEqual(formatMessage(binary, "[%p]", when), Uint8Array.of(0x5b, 0xff, 0x00, 0x80, 0x5d));
});

const v5: MqttMessage = {
  ...message,
  properties: {
    userProperties: [["k", "v"], ["k", "w"], ["a", "b"]],
    contentType: "ct",
    responseTopic: "rt",
    correlationData: new TextEncoder().encode("cd"),
    messageExpiryInterval: 60,
    subscriptionIdentifiers: [5],
    payloadFormatIndicator: 1,
  },
};

Deno.test("renderMessage() prints the v5 properties: %P %R %C %D %E %S %F %A (empty when absent)", () => {
  // As mosquitto_sub 2.0.11 prints the same message with -F '[%P][%R][%C][%D][%E][%S][%F][%A]'.
  assert.equal(
    text(formatMessage(v5, "[%P][%R][%C][%D][%E][%S][%F][%A]", when)),
    "[k:v k:w a:b][rt][ct][cd][60][5][1][]",
  );
  assert.equal(text(formatMessage(message, "[%P][%R][%C][%D][%E][%S][%F][%A]", when)), "[][][][][][][][]");
});

Deno.test("renderMessage() pads and cuts fields as %[-][0][WIDTH][.MAX]CODE", () => {
  // mosquitto_sub -F '%5l|%-5l|%05l|%3.3t|%5q|%10p|' (width is ignored for %q; zero only pads numbers).
  const m = { ...message, topic: "y/r/s", payload: new TextEncoder().encode("p") };
  assert.equal(
    text(formatMessage(m, "%5l|%-5l|%05l|%3.3t|%5q|%10p|%-3p|%05t", when)),
    "    1|1    |00001|y/r|1|         p|p  |y/r/s",
  );
});

Deno.test("renderMessage() gives %j with mosquitto_sub's keys, properties in their order, duplicate user properties kept", () => {
  assert.equal(
    text(formatMessage(v5, "%j", when)),
    '{"tst":"2024-01-02T03:04:05.678Z","topic":"a/b","qos":1,"retain":1,"payloadlen":2,"mid":9,' +
      '"properties":{"user-properties":{"k":"v","k":"w","a":"b"},"content-type":"ct","response-topic":"rt",' +
      '"correlation-data":"cd","message-expiry-interval":60,"subscription-identifier":5,' +
      '"payload-format-indicator":1},"payload":"hi"}',
  );
  const qos0: MqttMessage = { topic: "a/b", payload: message.payload, qos: 0, retain: false, dup: false };
  assert.equal(
    text(formatMessage(qos0, "%j", when)),
    '{"tst":"2024-01-02T03:04:05.678Z","topic":"a/b","qos":0,"retain":0,"payloadlen":2,"payload":"hi"}',
  );
});

Deno.test("renderMessage() embeds a JSON payload with %J, indents with --pretty, refuses a non-JSON one", () => {
  const json: MqttMessage = {
    topic: "a/b",
    payload: new TextEncoder().encode('{"a":[1,2]}'),
    qos: 0,
    retain: true,
    dup: false,
  };
  assert.equal(
    text(formatMessage(json, "%J", when)),
    '{"tst":"2024-01-02T03:04:05.678Z","topic":"a/b","qos":0,"retain":1,"payloadlen":11,"payload":{"a":[1,2]}}',
  );
  assert.equal(
    text(formatMessage(json, "%J", when, true)),
    '{\n  "tst": "2024-01-02T03:04:05.678Z",\n  "topic": "a/b",\n  "qos": 0,\n  "retain": 1,\n  "payloadlen": 11,\n' +
      '  "payload": {\n    "a": [\n      1,\n      2\n    ]\n  }\n}',
  );
  assert.throws(() => formatMessage(message, "%J", when), PayloadNotJsonError);
  assert.throws(
    () => formatMessage(message, "%J", when),
    /Message payload is not valid JSON on topic a\/b\./,
  );
});

Deno.test("renderMessage() gives mosquitto_sub's @ time codes (those that do not depend on the time zone here)", () => {
  assert.equal(text(formatMessage(message, "@s.@N @@ %t", when)), "1704164645.678000000 @ a/b");
  assert.throws(() => compileFormat("@Q"), /-F: unknown time code @Q/);
  assert.throws(() => compileFormat("x@"), /ends with a lone @/);
});

Deno.test("compileFormat() refuses an unknown code or a lone % at the end", () => {
  assert.throws(() => compileFormat("%z"), UsageError);
  assert.throws(() => compileFormat("%t %z"), /-F: unknown format code %z/);
  assert.throws(() => compileFormat("%10"), /ends in the middle of a % field/);
  assert.throws(() => compileFormat("50%"), /ends in the middle/);
  assert.doesNotThrow(() => compileFormat("100%% %-08.3t"));
});

Deno.test("jsonMessage() gives text payloads as text, binary as base64, and properties", () => {
  const json = JSON.parse(
    jsonMessage({ ...message, properties: { correlationData: Uint8Array.of(1, 2) } }, when),
  );
  assert.deepEqual(json, {
    time: "2024-01-02T03:04:05.678Z",
    topic: "a/b",
    payload: "hi",
    qos: 1,
    retain: true,
    properties: { correlationData: "AQI=" },
  });
  assert.equal(
    JSON.parse(jsonMessage({ ...message, payload: Uint8Array.of(0xff) }, when)).payloadBase64,
    "/w==",
  );
});

Deno.test("formatPacket() describes each packet on one line", () => {
  assert.equal(
    formatPacket({
      type: 3,
      topic: "t",
      payload: message.payload,
      qos: 1,
      packetId: 4,
      retain: false,
      dup: true,
    }, 5),
    't qos=1 id=4 retain=0 dup=1 "hi" (2 bytes)'.replace(/^/, "PUBLISH "),
  );
  assert.equal(
    formatPacket({ type: 2, sessionPresent: false, reasonCode: 5 }, 4),
    "CONNACK sessionPresent=0 not authorized (return code 5)",
  );
  assert.equal(
    formatPacket({ type: 2, sessionPresent: true, reasonCode: 0x87 }, 5),
    "CONNACK sessionPresent=1 NotAuthorized (0x87)",
  );
  assert.equal(
    formatPacket({ type: 9, packetId: 1, reasonCodes: [1, 0x80] }, 5),
    "SUBACK id=1 [GrantedQoS1, UnspecifiedError (0x80)]",
  );
  assert.equal(formatPacket({ type: 11, packetId: 2, reasonCodes: [] }, 4), "UNSUBACK id=2");
  assert.equal(
    formatPacket({ type: 14, reasonCode: 0x8e, properties: { reasonString: "bye" } }, 5),
    'DISCONNECT SessionTakenOver (0x8e) reasonString="bye"',
  );
  assert.equal(formatPacket({ type: 13 }, 4), "PINGRESP");
});

Deno.test("payloadPreview() quotes text, cuts long text and shows binary as hex", () => {
  assert.equal(payloadPreview(new TextEncoder().encode("a\nb")), '"a\\nb"');
  assert.equal(payloadPreview(new TextEncoder().encode("x".repeat(100))), `"${"x".repeat(80)}…"`);
  assert.equal(payloadPreview(Uint8Array.of(0xff, 0x00)), "0xff00");
});

Deno.test("describeError() gives one line naming the broker", () => {
  const at = { host: "h", port: 1 };
  assert.equal(describeError(new Deno.errors.ConnectionRefused("x"), at), "connection refused by h:1");
  assert.equal(
    describeError(new Deno.errors.ConnectionRefused("x"), { host: "", port: 0, label: "/run/mqtt.sock" }),
    "connection refused by /run/mqtt.sock",
  );
  assert.equal(
    describeError(new MqttError(0x87, "Connection refused: NotAuthorized (0x87)"), at),
    "Connection refused: NotAuthorized (0x87)",
  );
  assert.match(
    describeError(new Error("failed to lookup address information"), at),
    /^cannot resolve host "h"/,
  );
});
