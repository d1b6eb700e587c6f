/**
 * The accepting end of a peer link (`lib/cluster/peer_link_in.ts`) on its own: what it does between one read
 * and the next.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ForwardedMessage } from "../../lib/cluster/engine.ts";
import type { Logger } from "../../lib/broker/logger.ts";
import { encodeForwardBatch } from "../../lib/cluster/_redis_forward_codec.ts";
import { encodeFrame, FRAME } from "../../lib/cluster/peer_link_frames.ts";
import { type Inbound, serveInbound } from "../../lib/cluster/peer_link_in.ts";
import { writeAll } from "../../lib/cluster/peer_link_out.ts";
import { handshake } from "./_peer_wire.ts";

const SECRET = "s3cret";
const nothing = (): void => {};
const QUIET: Logger = { error: nothing, warn: nothing, info: nothing, debug: nothing };

/** A connected pair of loopback sockets: the accepted end and the connecting end. */
async function socketPair(): Promise<{ accepted: Deno.TcpConn; connecting: Deno.TcpConn }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [accepted, connecting] = await Promise.all([
    listener.accept(),
    Deno.connect({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port }),
  ]);
  listener.close();
  return { accepted, connecting };
}

function forwarded(id: string, text: string): ForwardedMessage {
  return {
    id,
    message: { topic: "t/x", payload: new TextEncoder().encode(text), qos: 0, retain: false },
    direct: true,
  };
}

Deno.test("serveInbound() lets the writes a batch's deliveries queued go out before it reads again", async () => {
  const { accepted, connecting } = await socketPair();
  const events: string[] = [];
  let delivering = false;
  // The accepted socket, noting each read started once a batch was delivered.
  const watched = {
    remoteAddr: accepted.remoteAddr,
    setNoDelay: (noDelay?: boolean) => accepted.setNoDelay(noDelay),
    write: (bytes: Uint8Array) => accepted.write(bytes),
    close: () => accepted.close(),
    read: (buffer: Uint8Array) => {
      if (delivering) events.push("read");
      return accepted.read(buffer);
    },
  } as unknown as Deno.TcpConn;
  const inbound: Inbound = { conn: watched, from: undefined };
  const served = serveInbound({
    incarnation: "b:1",
    secret: SECRET,
    logger: QUIET,
    isLive: () => Promise.resolve(true),
    deliver: (_from, messages) => {
      delivering = true;
      events.push(`deliver ${messages.length}`);
      queueMicrotask(() => events.push("write")); // as a subscriber's output schedules its write
      return true;
    },
  }, inbound);
  try {
    await handshake(connecting, "a:1", "b:1", SECRET);
    const batch = [forwarded("a:1:1", "one"), forwarded("a:1:2", "two")];
    await writeAll(connecting, encodeFrame(FRAME.data, encodeForwardBatch(batch)));
    const deadline = Date.now() + 3000;
    while (!events.includes("read") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(events, ["deliver 2", "write", "read"]);
  } finally {
    connecting.close();
    await served;
  }
});
