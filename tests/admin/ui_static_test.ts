/**
 * Rules the dashboard's files keep so that the strict CSP (`script-src 'self'; style-src 'self'`) holds and
 * broker-supplied strings (client ids, topics, payloads: attacker-controlled) can never become markup. The
 * browser test checks the same at run time; this one names the file and line at once.
 *
 * @module
 */

import assert from "node:assert/strict";
import { testIf } from "../_permissions.ts";

const UI = new URL("../../lib/admin/ui/", import.meta.url);
/** Third-party files, checked by ui_vendor_test.ts instead. */
const VENDORED = new Set(["uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE.txt"]);

function readUnavailable(): string | undefined {
  return Deno.permissions.querySync({ name: "read", path: UI }).state === "granted"
    ? undefined
    : "needs --allow-read";
}

async function ownScripts(): Promise<[string, string][]> {
  const scripts: [string, string][] = [];
  for await (const entry of Deno.readDir(UI)) {
    if (entry.isFile && entry.name.endsWith(".js") && !VENDORED.has(entry.name)) {
      scripts.push([entry.name, await Deno.readTextFile(new URL(entry.name, UI))]);
    }
  }
  return scripts.sort(([a], [b]) => a.localeCompare(b));
}

/** Lines of `text` matching `pattern`, as `name:line: text`. */
function offending(name: string, text: string, pattern: RegExp): string[] {
  return text.split("\n").flatMap((
    line,
    i,
  ) => (pattern.test(line) ? [`${name}:${i + 1}: ${line.trim()}`] : []));
}

testIf(
  "dashboard: index.html has no inline script, style or event handler (CSP)",
  [readUnavailable()],
  async () => {
    const html = await Deno.readTextFile(new URL("index.html", UI));
    assert.deepEqual(offending("index.html", html, /<script(?![^>]*\bsrc=)/), []);
    assert.deepEqual(offending("index.html", html, /<style|\sstyle=/), []);
    assert.deepEqual(offending("index.html", html, /\son[a-z]+=/), []);
    assert.deepEqual(offending("index.html", html, /(src|href)="(?!\/assets\/|#|data:)/), []);
  },
);

testIf("dashboard: no script parses HTML or evaluates strings", [readUnavailable()], async () => {
  const found = (await ownScripts()).flatMap(([name, text]) =>
    offending(
      name,
      text,
      /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\("on/,
    )
  );
  assert.deepEqual(found, []);
});

testIf("dashboard: every script is type-checked as a DOM module", [readUnavailable()], async () => {
  const scripts = await ownScripts();
  assert.ok(scripts.length > 10, `${scripts.length} scripts`);
  for (const [name, text] of scripts) {
    assert.ok(text.startsWith('// @ts-check\n/// <reference lib="dom" />\n'), name);
  }
});

// Its own `deno check`: the UI's `lib="dom"` in the same program as the Deno code breaks Deno's own types.
testIf("dashboard: the check task type-checks the UI folder", [readUnavailable()], async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assert.match(config.tasks.check, /deno check lib\/admin\/ui\/ /);
});
