import assert from "node:assert/strict";
import { PacketIds } from "../../lib/client/packet_id.ts";

Deno.test("PacketIds hands out 1..65535 round-robin, skipping ids in use", () => {
  const ids = new PacketIds();
  assert.equal(ids.allocate(), 1);
  assert.equal(ids.allocate(), 2);
  ids.release(1);
  assert.equal(ids.allocate(), 3); // not 1 again at once
  for (let i = 4; i <= 65_535; i++) assert.equal(ids.allocate(), i);
  assert.equal(ids.allocate(), 1); // wrapped to the one free id
  assert.equal(ids.allocate(), undefined); // all in use
  assert.equal(ids.inUse, 65_535);
  ids.release(500);
  assert.equal(ids.allocate(), 500);
  ids.clear();
  assert.equal(ids.inUse, 0);
});
