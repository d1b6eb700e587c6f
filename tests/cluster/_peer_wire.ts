/**
 * The connecting side of a peer link, spoken by hand (`lib/cluster/peer_link_frames.ts`), for the peer link
 * tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  answerChallenge,
  encodeFrame,
  FRAME,
  FrameReader,
  helloBody,
} from "../../lib/cluster/peer_link_frames.ts";
import { readFrame, writeAll } from "../../lib/cluster/peer_link_out.ts";

/** Runs the connecting side of the handshake as `from` with `secret`; resolves once READY came. */
export async function handshake(conn: Deno.Conn, from: string, to: string, secret: string): Promise<void> {
  const reader = new FrameReader();
  const hello = helloBody(from, to);
  await writeAll(conn, encodeFrame(FRAME.hello, hello));
  const challenge = await readFrame(conn, reader, FRAME.challenge);
  const auth = answerChallenge(secret, hello, challenge);
  assert.ok(auth !== undefined, "the node proves it knows the secret");
  await writeAll(conn, encodeFrame(FRAME.auth, auth));
  await readFrame(conn, reader, FRAME.ready);
}
