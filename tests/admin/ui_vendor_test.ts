/**
 * The vendored uPlot in `lib/admin/ui/` is exactly the npm release `uplot@1.6.32` (`npm pack uplot@1.6.32`:
 * `dist/uPlot.iife.min.js`, `dist/uPlot.min.css` and its `LICENSE`, kept beside them). To upgrade, replace the
 * three files from the new tarball and update the version and the checksums here in the same commit.
 *
 * @module
 */

import assert from "node:assert/strict";
import { testIf } from "../_permissions.ts";

const UI = new URL("../../lib/admin/ui/", import.meta.url);

const UPLOT_VERSION = "1.6.32";

/** sha256 of each vendored file, as unpacked from the npm tarball. */
const VENDORED: Readonly<Record<string, string>> = {
  "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
  "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
  "uPlot.LICENSE.txt": "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
};

function readUnavailable(): string | undefined {
  return Deno.permissions.querySync({ name: "read", path: UI }).state === "granted"
    ? undefined
    : "needs --allow-read";
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

testIf("vendored uPlot: each file has the sha256 of the npm release", [readUnavailable()], async () => {
  for (const [name, expected] of Object.entries(VENDORED)) {
    assert.equal(await sha256(await Deno.readFile(new URL(name, UI))), expected, name);
  }
});

testIf(`vendored uPlot: the script's banner says v${UPLOT_VERSION}`, [readUnavailable()], async () => {
  const script = await Deno.readTextFile(new URL("uPlot.iife.min.js", UI));
  assert.ok(
    script.startsWith(`/*! https://github.com/leeoniya/uPlot (v${UPLOT_VERSION}) */`),
    script.slice(0, 80),
  );
});

testIf("vendored uPlot: its MIT licence is kept beside it", [readUnavailable()], async () => {
  const licence = await Deno.readTextFile(new URL("uPlot.LICENSE.txt", UI));
  assert.match(licence, /^The MIT License \(MIT\)/);
  assert.match(licence, /Copyright \(c\) 2022 Leon Sorokin/);
});

testIf("vendored uPlot: the page loads exactly the vendored files", [readUnavailable()], async () => {
  const html = await Deno.readTextFile(new URL("index.html", UI));
  assert.match(html, /<script src="\/assets\/uPlot\.iife\.min\.js" defer><\/script>/);
  assert.match(html, /<link rel="stylesheet" href="\/assets\/uPlot\.min\.css">/);
});
