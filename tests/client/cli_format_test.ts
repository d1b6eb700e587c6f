import assert from "node:assert/strict";
import {
  describeError,
  formatMessage,
  formatPacket,
  jsonMessage,
  payloadPreview,
} from "../../cli/_format.ts";
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

Deno.test("formatMessage() expands mosquitto_sub's -F tokens and escapes", () => {
  assert.equal(
    text(formatMessage(message, "%t %p %q %r %l %m %% %x\\t|\\n", when)),
    "a/b hi 1 1 2 9 % 6869\t|\n",
  );
  assert.equal(text(formatMessage(message, "%I %U %z", when)), "2024-01-02T03:04:05.678Z 1704164645.678 %z");
});

Deno.test("formatMessage() writes a binary payload byte for byte", () => {
  const binary = { ...message, payload: Uint8Array.of(0xff, 0x00, 0x80) };
  assert.deepEqual(formatMessage(binary, "[%p]", when), Uint8Array.of(0x5b, 0xff, 0x00, 0x80, 0x5d));
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
    describeError(new MqttError(0x87, "Connection refused: NotAuthorized (0x87)"), at),
    "Connection refused: NotAuthorized (0x87)",
  );
  assert.match(
    describeError(new Error("failed to lookup address information"), at),
    /^cannot resolve host "h"/,
  );
});
