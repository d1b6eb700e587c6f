/**
 * MQTT.js's browser bundle in a real headless Chromium, connecting to the broker over WebSocket.
 *
 * Needs the Debian `chromium` package (`/usr/bin/chromium`) and `--allow-all`: Playwright starts and talks to
 * the browser (run, read, write, env, sys), and when it loads it probes `/proc/sys`, which Deno opens only to
 * `--allow-all`. Skipped with the reason otherwise.
 *
 * @module
 */

import assert from "node:assert/strict";
import { loadMqttJs, mqttJsUnavailable, testIf, withListeners } from "./_helpers.ts";
import { browserUnavailable, CHROMIUM, CHROMIUM_ARGS } from "../../_browser.ts";

/** MQTT.js's browser bundle, from the npm package the import map pins. */
async function mqttBundle(): Promise<string> {
  return await Deno.readTextFile(new URL("../dist/mqtt.min.js", import.meta.resolve("mqtt")));
}

/** The page: connects with the bundle, subscribes, and keeps what it receives on `window`. */
function page(wsUrl: string): string {
  const options = JSON.stringify({ clientId: "chromium", reconnectPeriod: 0, protocolVersion: 5 });
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>MQTT.js in Chromium</title>
<script src="/mqtt.min.js"></script></head>
<body><script>
  window.state = { subscribed: false, received: null, error: null };
  const client = mqtt.connect(${JSON.stringify(wsUrl)}, ${options});
  client.on("error", (e) => window.state.error = String(e));
  client.on("connect", () => {
    client.subscribe("browser/test", { qos: 1 }, (error) => {
      if (error) window.state.error = String(error);
      else window.state.subscribed = true;
    });
  });
  client.on("message", (topic, payload) => {
    window.state.received = topic + " " + new TextDecoder().decode(payload);
    client.end();
  });
</script></body></html>`;
}

testIf(
  "browser: MQTT.js in headless Chromium subscribes over ws:// and receives a message",
  [browserUnavailable(), mqttJsUnavailable()],
  async () => {
    // Loaded here, not at the top: both read the environment, and without --allow-env this file must still load.
    const { chromium } = await import("playwright-core");
    const mqtt = await loadMqttJs();
    const bundle = await mqttBundle();
    await withListeners([{ type: "ws", port: 0 }, { type: "tcp", port: 0 }], async (running) => {
      const [ws, tcp] = running.listeners;
      const site = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
        const { pathname } = new URL(request.url);
        if (pathname === "/") {
          return new Response(page(ws!.url), { headers: { "content-type": "text/html" } });
        }
        if (pathname === "/mqtt.min.js") {
          return new Response(bundle, { headers: { "content-type": "text/javascript" } });
        }
        return new Response("Not Found", { status: 404 });
      });
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [...CHROMIUM_ARGS],
        timeout: 30_000,
      });
      try {
        const tab = await browser.newPage();
        await tab.goto(`http://127.0.0.1:${site.addr.port}/`);
        type State = { subscribed: boolean; received: string | null; error: string | null };
        const state = () => tab.evaluate(() => (globalThis as unknown as { state: State }).state);
        await tab.waitForFunction(
          () => {
            const s = (globalThis as unknown as { state: State }).state;
            return s.subscribed || s.error !== null;
          },
          undefined,
          { timeout: 10_000 },
        );
        assert.equal((await state()).error, null);

        const publisher = await mqtt.connectAsync(
          tcp!.url.replace("tcp:", "mqtt:"),
          { reconnectPeriod: 0 },
          false,
        );
        try {
          await publisher.publishAsync("browser/test", "hello, Chromium", { qos: 1 });
        } finally {
          await publisher.endAsync();
        }
        await tab.waitForFunction(
          () => (globalThis as unknown as { state: State }).state.received !== null,
          undefined,
          { timeout: 10_000 },
        );
        assert.deepEqual(await state(), {
          subscribed: true,
          received: "browser/test hello, Chromium",
          error: null,
        });
      } finally {
        await browser.close();
        await site.shutdown();
      }
    });
  },
);
