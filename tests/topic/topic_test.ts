import assert from "node:assert/strict";
import { MqttError } from "../../lib/mqtt_error.ts";
import { REASON_CODE } from "../../lib/packet/reason_code.ts";
import {
  isWildcardFilter,
  parseSharedFilter,
  type TopicLimits,
  validateTopicFilter,
  validateTopicName,
} from "../../lib/topic/topic.ts";

interface ValidityCase {
  readonly value: string;
  readonly valid: boolean;
  readonly rule: string;
  readonly limits?: TopicLimits;
  /** Shown instead of the value when it is long. */
  readonly label?: string;
}

const FILTERS: readonly ValidityCase[] = [
  { value: "sport/tennis/player1/#", valid: true, rule: "MQTT-4.7.1-2 (3.1.1)" },
  { value: "sport/#", valid: true, rule: "MQTT-4.7.1-2 (3.1.1)" },
  { value: "#", valid: true, rule: "MQTT-4.7.1-2 (3.1.1)" },
  { value: "+", valid: true, rule: "MQTT-4.7.1-3 (3.1.1)" },
  { value: "+/tennis/#", valid: true, rule: "MQTT-4.7.1-3 (3.1.1)" },
  { value: "sport/+/player1", valid: true, rule: "MQTT-4.7.1-3 (3.1.1)" },
  { value: "+/+", valid: true, rule: "MQTT-4.7.1-3 (3.1.1)" },
  { value: "/+", valid: true, rule: "MQTT-4.7.1-3 (3.1.1)" },
  { value: "/finance", valid: true, rule: "MQTT-4.7.3-1 (5.0)" },
  { value: "a//b", valid: true, rule: "MQTT-4.7.3-1 (5.0)" },
  { value: "/", valid: true, rule: "MQTT-4.7.3-1 (5.0)" },
  { value: "$SYS/#", valid: true, rule: "MQTT-4.7.2-1 (5.0)" },
  { value: "$share/g/a/+", valid: true, rule: "MQTT-4.8.2-1 (5.0)" },
  { value: "$share/consumer1//finance", valid: true, rule: "MQTT-4.8.2-2 (5.0)" },
  { value: "$share/g/#", valid: true, rule: "MQTT-4.8.2-2 (5.0)" },
  { value: "$share", valid: true, rule: "MQTT-4.8.2-1 (5.0)" }, // not a shared subscription: no "/"
  { value: "a+/b", valid: false, rule: "MQTT-4.7.1-3 (3.1.1)" },
  { value: "a/b+", valid: false, rule: "MQTT-4.7.1-3 (3.1.1)" },
  { value: "a/+b/c", valid: false, rule: "MQTT-4.7.1-3 (3.1.1)" },
  { value: "++", valid: false, rule: "MQTT-4.7.1-3 (3.1.1)" },
  { value: "a#", valid: false, rule: "MQTT-4.7.1-2 (3.1.1)" },
  { value: "#/a", valid: false, rule: "MQTT-4.7.1-2 (3.1.1)" },
  { value: "sport/tennis#", valid: false, rule: "MQTT-4.7.1-2 (3.1.1)" },
  { value: "sport/tennis/#/ranking", valid: false, rule: "MQTT-4.7.1-2 (3.1.1)" },
  { value: "+#", valid: false, rule: "MQTT-4.7.1-3 (3.1.1)" },
  { value: "", valid: false, rule: "MQTT-4.7.3-1 (5.0)" },
  { value: "$share//a", valid: false, rule: "MQTT-4.8.2-1 (5.0)" },
  { value: "$share/g", valid: false, rule: "MQTT-4.8.2-2 (5.0)" },
  { value: "$share/g/", valid: false, rule: "MQTT-4.8.2-2 (5.0)" },
  { value: "$share/g+/a", valid: false, rule: "MQTT-4.8.2-2 (5.0)" },
  { value: "$share/#/a", valid: false, rule: "MQTT-4.8.2-2 (5.0)" },
  { value: "$share/g/a#", valid: false, rule: "MQTT-4.7.1-2 (3.1.1)" },
  { value: "a".repeat(65_535), label: "65,535 bytes", valid: true, rule: "MQTT-4.7.3-3 (5.0)" },
  { value: "a".repeat(65_536), label: "65,536 bytes", valid: false, rule: "MQTT-4.7.3-3 (5.0)" },
  {
    value: "é".repeat(32_768),
    label: "32,768 two-byte characters",
    valid: false,
    rule: "MQTT-4.7.3-3 (5.0)",
  },
];

const NAMES: readonly ValidityCase[] = [
  { value: "sport/tennis/player1", valid: true, rule: "MQTT-4.7.1-1 (3.1.1)" },
  { value: "/finance", valid: true, rule: "MQTT-4.7.3-1 (5.0)" },
  { value: "a//b", valid: true, rule: "MQTT-4.7.3-1 (5.0)" },
  { value: "sport/", valid: true, rule: "MQTT-4.7.3-1 (5.0)" },
  { value: "/", valid: true, rule: "MQTT-4.7.3-1 (5.0)" },
  { value: "$SYS/broker/uptime", valid: true, rule: "MQTT-4.7.2-1 (5.0)" },
  { value: "", valid: false, rule: "MQTT-4.7.3-1 (5.0)" },
  { value: "sport/+", valid: false, rule: "MQTT-3.3.2-2 (5.0)" },
  { value: "sport/#", valid: false, rule: "MQTT-3.3.2-2 (5.0)" },
  { value: "+", valid: false, rule: "MQTT-3.3.2-2 (5.0)" },
  { value: "#", valid: false, rule: "MQTT-3.3.2-2 (5.0)" },
  { value: "a+b", valid: false, rule: "MQTT-3.3.2-2 (5.0)" },
  { value: "é".repeat(32_767), label: "32,767 two-byte characters", valid: true, rule: "MQTT-4.7.3-3 (5.0)" },
  {
    value: "é".repeat(32_768),
    label: "32,768 two-byte characters",
    valid: false,
    rule: "MQTT-4.7.3-3 (5.0)",
  },
  {
    value: "😀".repeat(16_383),
    label: "16,383 four-byte characters",
    valid: true,
    rule: "MQTT-4.7.3-3 (5.0)",
  },
  {
    value: "😀".repeat(16_384),
    label: "16,384 four-byte characters",
    valid: false,
    rule: "MQTT-4.7.3-3 (5.0)",
  },
];

function expand(
  fn: string,
  validate: (value: string, limits?: TopicLimits) => void,
  reasonCode: number,
  cases: readonly ValidityCase[],
): void {
  for (const c of cases) {
    const shown = c.label ?? JSON.stringify(c.value);
    if (c.valid) {
      Deno.test(`${fn}() accepts ${shown} [${c.rule}]`, () => {
        validate(c.value, c.limits);
      });
    } else {
      Deno.test(`${fn}() rejects ${shown} with 0x${reasonCode.toString(16)} [${c.rule}]`, () => {
        assert.throws(() => validate(c.value, c.limits), (error: unknown) => {
          assert.ok(error instanceof MqttError);
          assert.equal(error.reasonCode, reasonCode);
          assert.ok(error.message.includes(`[${c.rule}]`), error.message);
          return true;
        });
      });
    }
  }
}

expand("validateTopicFilter", validateTopicFilter, REASON_CODE.TopicFilterInvalid, FILTERS);
expand("validateTopicName", validateTopicName, REASON_CODE.TopicNameInvalid, NAMES);

Deno.test("validateTopicName() applies maxLength in UTF-8 bytes", () => {
  for (const name of ["ééééé", "abcdefghij", "ééééa"]) validateTopicName(name, { maxLength: 10 });
  for (const name of ["éééééa", "abcdefghijk"]) {
    assert.throws(
      () => validateTopicName(name, { maxLength: 10 }),
      (e: unknown) => e instanceof MqttError && e.reasonCode === REASON_CODE.TopicNameInvalid,
      name,
    );
  }
});

Deno.test("validateTopicName() applies maxDepth", () => {
  validateTopicName("a/b/c", { maxDepth: 3 });
  validateTopicName("a/b/c", { maxDepth: 3, maxLength: 5 });
  assert.throws(
    () => validateTopicName("a/b/c/d", { maxDepth: 3 }),
    (e: unknown) => e instanceof MqttError && e.reasonCode === REASON_CODE.TopicNameInvalid,
  );
});

Deno.test("validateTopicFilter() applies maxDepth to the filter after the ShareName", () => {
  validateTopicFilter("a/+/#", { maxDepth: 3 });
  validateTopicFilter("$share/g/a/+/#", { maxDepth: 3 });
  for (const filter of ["a/+/c/#", "$share/g/a/b/c/d"]) {
    assert.throws(
      () => validateTopicFilter(filter, { maxDepth: 3 }),
      (e: unknown) => e instanceof MqttError && e.reasonCode === REASON_CODE.TopicFilterInvalid,
    );
  }
  assert.throws(
    () => validateTopicFilter("abcdefghijk", { maxLength: 10 }),
    (e: unknown) => e instanceof MqttError && e.reasonCode === REASON_CODE.TopicFilterInvalid,
  );
});

Deno.test("parseSharedFilter() splits $share/{ShareName}/{filter} [MQTT-4.8.2-1 (5.0)]", () => {
  assert.deepEqual(parseSharedFilter("$share/g/a/+"), { group: "g", filter: "a/+" });
  assert.deepEqual(parseSharedFilter("$share/consumer1//finance"), {
    group: "consumer1",
    filter: "/finance",
  });
  assert.equal(parseSharedFilter("sport/#"), undefined);
  assert.equal(parseSharedFilter("$share"), undefined);
  assert.equal(parseSharedFilter("$SYS/#"), undefined);
});

Deno.test("parseSharedFilter() rejects a malformed shared filter with 0x8f [MQTT-4.8.2-2 (5.0)]", () => {
  for (const filter of ["$share/", "$share//a", "$share/g", "$share/g/", "$share/g+/a", "$share/g/a+"]) {
    assert.throws(
      () => parseSharedFilter(filter),
      (e: unknown) => e instanceof MqttError && e.reasonCode === REASON_CODE.TopicFilterInvalid,
      filter,
    );
  }
});

Deno.test("isWildcardFilter() finds + and # levels", () => {
  assert.equal(isWildcardFilter("a/b"), false);
  assert.equal(isWildcardFilter("/finance"), false);
  assert.equal(isWildcardFilter("a/+"), true);
  assert.equal(isWildcardFilter("#"), true);
  assert.equal(isWildcardFilter("$share/g/a/#"), true);
});

// matchesFilter() itself, and every matcher that must agree with it: matcher_contract_test.ts.
