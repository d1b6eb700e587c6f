/** The Prometheus text writer (`lib/admin/metrics/text_format.ts`) against the format's rules, read back. */

import assert from "node:assert/strict";
import { Histogram } from "../../../lib/admin/metrics/histogram.ts";
import { escapeLabelValue, formatValue, MetricsWriter } from "../../../lib/admin/metrics/text_format.ts";
import { parseExposition, value } from "./_prometheus_text.ts";

Deno.test("MetricsWriter writes HELP and TYPE once per family, then its samples, and a trailing newline", () => {
  const w = new MetricsWriter();
  w.counter("t_requests", "Requests.").sample(1, { code: "2xx" }).sample(2, { code: "4xx" });
  w.gauge("t_up", "Up.").sample(1);
  const text = w.text();
  assert.ok(text.endsWith("\n"));
  assert.equal(text.match(/# HELP t_requests_total /g)?.length, 1);
  assert.equal(text.match(/# TYPE t_requests_total counter/g)?.length, 1);
  const families = parseExposition(text);
  assert.deepEqual([...families.keys()], ["t_requests_total", "t_up"]);
  assert.equal(value(families, "t_requests_total", { code: "4xx" }), 2);
});

Deno.test("MetricsWriter puts _total on counters and refuses a family written twice", () => {
  const w = new MetricsWriter();
  w.counter("t_bytes", "Bytes.").sample(5);
  assert.match(w.text(), /^t_bytes_total 5$/m);
  assert.throws(() => w.counter("t_bytes", "Again."), /twice/);
  assert.throws(() => w.gauge("t-bad", "Bad name."), /bad metric name/);
});

Deno.test('MetricsWriter escapes \\, " and newlines in label values, and the parser reads them back', () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  const hostile = 'x\\"} 1\nevil_metric 666\n';
  const w = new MetricsWriter();
  w.gauge("t_info", "Info.").sample(1, { listener: hostile });
  const text = w.text();
  assert.equal(text.split("\n").length, 4, "HELP, TYPE, one sample line, and the final empty string");
  const families = parseExposition(text);
  assert.equal(families.get("t_info")!.samples[0]!.labels.listener, hostile);
  assert.equal(families.has("evil_metric"), false);
});

Deno.test("MetricsWriter writes histogram buckets cumulative, with +Inf equal to _count, then _sum and _count", () => {
  const h = new Histogram([0.1, 0.5, 1]);
  for (const v of [0.05, 0.1, 0.3, 0.7, 5, 0.01]) h.observe(v);
  const w = new MetricsWriter();
  w.histogram("t_latency_seconds", "Latency.").buckets(h, { qos: "1" }).buckets(
    new Histogram([0.1, 0.5, 1]),
    {
      qos: "2",
    },
  );
  const families = parseExposition(w.text());
  const samples = families.get("t_latency_seconds")!.samples.filter((s) => s.labels.qos === "1");
  assert.deepEqual(
    samples.map((s) => [s.name, s.labels.le ?? "", s.value]),
    [
      ["t_latency_seconds_bucket", "0.1", 3],
      ["t_latency_seconds_bucket", "0.5", 4],
      ["t_latency_seconds_bucket", "1", 5],
      ["t_latency_seconds_bucket", "+Inf", 6],
      ["t_latency_seconds_sum", "", 0.05 + 0.1 + 0.3 + 0.7 + 5 + 0.01],
      ["t_latency_seconds_count", "", 6],
    ],
  );
  for (let i = 1; i < 4; i++) assert.ok(samples[i]!.value >= samples[i - 1]!.value, "cumulative");
  assert.equal(value(families, "t_latency_seconds_count", { qos: "2" }), 0);
});

Deno.test("formatValue() spells infinities and NaN as the format does", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(0.0005), "0.0005");
  assert.equal(formatValue(12), "12");
});

Deno.test("Histogram counts a value equal to a bound in that bound's bucket", () => {
  const h = new Histogram([1, 2]);
  h.observe(1);
  h.observe(2);
  h.observe(2.0001);
  assert.deepEqual(h.cumulative(), [1, 2]);
  assert.equal(h.count, 3);
  assert.throws(() => new Histogram([2, 1]), RangeError);
});
