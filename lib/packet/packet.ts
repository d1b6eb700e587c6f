/**
 * The union of every control packet; `switch (packet.type)` narrows it.
 *
 * @module
 */

import type { AuthPacket } from "./auth.ts";
import type { ConnackPacket } from "./connack.ts";
import type { ConnectPacket } from "./connect.ts";
import type { DisconnectPacket } from "./disconnect.ts";
import type { PingreqPacket } from "./pingreq.ts";
import type { PingrespPacket } from "./pingresp.ts";
import type { PubackPacket } from "./puback.ts";
import type { PubcompPacket } from "./pubcomp.ts";
import type { PublishPacket } from "./publish.ts";
import type { PubrecPacket } from "./pubrec.ts";
import type { PubrelPacket } from "./pubrel.ts";
import type { SubackPacket } from "./suback.ts";
import type { SubscribePacket } from "./subscribe.ts";
import type { UnsubackPacket } from "./unsuback.ts";
import type { UnsubscribePacket } from "./unsubscribe.ts";

/** Any MQTT control packet. */
export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | PubrecPacket
  | PubrelPacket
  | PubcompPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;
