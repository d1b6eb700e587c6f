import assert from "node:assert/strict";
import { parseCursor, topK } from "../../lib/broker/_paging.ts";
import { mulberry32 } from "../_prng.ts";

Deno.test("topK() gives the first k of a full sort, with ties, for short and long lists", () => {
  const random = mulberry32(0x7e57);
  for (const n of [0, 1, 5, 50, 1000, 5000]) {
    for (const k of [1, 3, 101]) {
      const items = Array.from({ length: n }, (_, i) => ({ v: Math.floor(random() * 20), id: `c${i}` }));
      const order = (a: { v: number; id: string }, b: { v: number; id: string }) =>
        b.v - a.v || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
      const expected = [...items].sort(order).slice(0, k);
      assert.deepEqual(topK([...items], k, order), expected, `n=${n} k=${k}`);
    }
  }
});

Deno.test("parseCursor() reads count:id and refuses anything else", () => {
  assert.deepEqual(parseCursor("12:a:b"), { value: 12, id: "a:b" });
  assert.equal(parseCursor("x:a"), undefined);
  assert.equal(parseCursor("nocolon"), undefined);
  assert.equal(parseCursor(undefined), undefined);
});
