import assert from "node:assert/strict";
import { SeenIds } from "../../lib/cluster/seen_ids.ts";

Deno.test("SeenIds: an id is new once, per origin, whatever the order", () => {
  const seen = new SeenIds();
  assert.equal(seen.remember("a-1:5"), true);
  assert.equal(seen.remember("a-1:3"), true);
  assert.equal(seen.remember("a-1:5"), false);
  assert.equal(seen.remember("a-1:3"), false);
  assert.equal(seen.remember("b-2:5"), true); // another origin, same number
  assert.equal(seen.remember("a-1:4"), true); // a gap filled later
  assert.equal(seen.remember("b-2:5"), false);
  assert.equal(seen.remember("a-1:4"), false);
});

Deno.test("SeenIds: node names with colons and ids not of the <origin>:<seq> form", () => {
  const seen = new SeenIds();
  assert.equal(seen.remember("host:1883-ab:7"), true);
  assert.equal(seen.remember("host:1884-ab:7"), true);
  assert.equal(seen.remember("host:1883-ab:7"), false);
  assert.equal(seen.remember("odd"), true);
  assert.equal(seen.remember("odd"), false);
  assert.equal(seen.remember("x:12a"), true);
  assert.equal(seen.remember("x:12a"), false);
});

Deno.test("SeenIds: remembers at least the last 2^18 numbers of an origin; numbers that move past reuse slots", () => {
  const seen = new SeenIds();
  for (let seq = 1; seq <= 100_000; seq += 3) assert.equal(seen.remember(`n-1:${seq}`), true);
  for (let seq = 1; seq <= 100_000; seq += 3) assert.equal(seen.remember(`n-1:${seq}`), false);
  // Far ahead: the window moves; the slot of 1 now stands for 1 + 2^18, which is new.
  assert.equal(seen.remember(`n-1:${1 + (1 << 18)}`), true);
  assert.equal(seen.remember(`n-1:${1 + (1 << 18)}`), false);
  assert.equal(seen.remember(`n-1:${4 + (1 << 18)}`), true);
  // Inside the window still: 100,000 was seen, and so was 99,997.
  assert.equal(seen.remember("n-1:99997"), false);
  // Older than the window: forgotten, taken as new (as a full set of ids would have forgotten it).
  assert.equal(seen.remember("n-1:1"), true);
  // A jump past the whole window forgets everything before it.
  assert.equal(seen.remember(`n-1:${10 << 18}`), true);
  assert.equal(seen.remember(`n-1:${(10 << 18) - 5}`), true);
  assert.equal(seen.remember(`n-1:${(10 << 18) - 5}`), false);
});

Deno.test("SeenIds: of 64 origins, the one not heard from the longest is forgotten first", () => {
  const seen = new SeenIds();
  for (let origin = 0; origin < 64; origin++) assert.equal(seen.remember(`node-${origin}:1`), true);
  assert.equal(seen.remember("node-0:2"), true); // node-0 heard from again: now the most recent
  assert.equal(seen.remember("node-64:1"), true); // a 65th origin: node-1 is forgotten
  assert.equal(seen.remember("node-0:1"), false);
  assert.equal(seen.remember("node-2:1"), false);
  assert.equal(seen.remember("node-1:1"), true);
});
