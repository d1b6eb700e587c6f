/**
 * What an idle connection keeps (issue 19): after CONNACK a quiet client's connection holds no suspended read
 * loop (an async function waiting on its read, with its promises and callbacks: about 450 bytes each), whichever
 * the transport. Counted in a heap snapshot of this process.
 */

import assert from "node:assert/strict";
import { getHeapSnapshot } from "node:v8";
import { connectPacket, withBroker } from "./_wire.ts";

/** Suspended async functions (generators) whose `this` is one of our connections, in a heap snapshot. */
async function connectionGenerators(): Promise<number> {
  const text = await new Response(getHeapSnapshot() as unknown as ReadableStream<Uint8Array>).text();
  const snapshot = JSON.parse(text);
  const meta = snapshot.snapshot.meta;
  const nodeFields: string[] = meta.node_fields;
  const edgeFields: string[] = meta.edge_fields;
  const nodeTypes: string[] = meta.node_types[0];
  const nodes: number[] = snapshot.nodes;
  const edges: number[] = snapshot.edges;
  const strings: string[] = snapshot.strings;
  const nf = nodeFields.length;
  const ef = edgeFields.length;
  const type = nodeFields.indexOf("type");
  const name = nodeFields.indexOf("name");
  const edgeCount = nodeFields.indexOf("edge_count");
  const edgeName = edgeFields.indexOf("name_or_index");
  const toNode = edgeFields.indexOf("to_node");
  let count = 0;
  for (let i = 0, e = 0; i < nodes.length; i += nf) {
    const edgesOf = nodes[i + edgeCount]!;
    const generator = nodeTypes[nodes[i + type]!] === "object" && strings[nodes[i + name]!] === "Generator";
    for (let k = 0; k < edgesOf; k++, e += ef) {
      if (!generator || strings[edges[e + edgeName]!] !== "receiver") continue;
      if (strings[nodes[edges[e + toNode]! + name]!] === "Connection") count++;
    }
  }
  return count;
}

for (const transport of ["tcp", "memory"] as const) {
  Deno.test(`idle connections over ${transport} keep no suspended read loop`, async () => {
    await withBroker({}, async ({ open }) => {
      for (let i = 0; i < 20; i++) {
        const client = await open(4, transport);
        await client.send(connectPacket({ version: 4, clientId: `idle-${i}` }));
        await client.expectPacket(2, "CONNACK");
      }
      assert.equal(await connectionGenerators(), 0);
    });
  });
}
