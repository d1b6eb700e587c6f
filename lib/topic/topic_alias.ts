/**
 * MQTT 5.0 Topic Aliases (section 3.3.2.3.4): a small integer standing for a topic on one network connection.
 * Aliases never outlive the connection they were set on [MQTT-3.3.2-7 (5.0)].
 *
 * @module
 */

import { MqttError } from "../mqtt_error.ts";
import { REASON_CODE } from "../packet/reason_code.ts";

/** What to put on the wire for one outgoing PUBLISH. */
export interface AliasedTopic {
  /** The topic to send: empty when `alias` alone stands for it. */
  readonly topic: string;
  /** The Topic Alias property to send, if any. */
  readonly alias?: number;
}

/**
 * Assigns aliases to outgoing topics, up to the server's Topic Alias Maximum. The first PUBLISH on a topic carries
 * the topic and a new alias; later ones carry the alias and an empty topic. When every alias is taken, the least
 * recently used one is rebound to the new topic.
 *
 * @example
 * ```ts
 * import { OutgoingTopicAliases } from "./topic_alias.ts";
 * const aliases = new OutgoingTopicAliases(10);
 * console.assert(aliases.resolve("sensors/1").alias === 1);
 * const again = aliases.resolve("sensors/1");
 * console.assert(again.topic === "" && again.alias === 1);
 * ```
 */
export class OutgoingTopicAliases {
  #max: number;
  /** Topic to alias, in least-recently-used-first order. */
  #byTopic = new Map<string, number>();

  /** `max` is the server's Topic Alias Maximum; 0 turns aliases off. */
  constructor(max: number) {
    this.#max = max;
  }

  /** The server's Topic Alias Maximum. */
  get max(): number {
    return this.#max;
  }

  /** The topic and alias to send for `topic`. */
  resolve(topic: string): AliasedTopic {
    if (this.#max === 0 || topic === "") return { topic };
    const known = this.#byTopic.get(topic);
    if (known !== undefined) {
      this.#byTopic.delete(topic);
      this.#byTopic.set(topic, known);
      return { topic: "", alias: known };
    }
    let alias = this.#byTopic.size + 1;
    if (alias > this.#max) {
      const [oldest, oldAlias] = this.#byTopic.entries().next().value!;
      this.#byTopic.delete(oldest);
      alias = oldAlias;
    }
    this.#byTopic.set(topic, alias);
    return { topic, alias };
  }

  /** Forgets every alias, for a new connection with the server's new maximum. */
  reset(max: number): void {
    this.#max = max;
    this.#byTopic.clear();
  }
}

/**
 * Maps the aliases a peer sends to topics, for at most the Topic Alias Maximum this side announced (the client's
 * CONNECT, the server's CONNACK). Client and broker both receive through it, so both refuse alike.
 *
 * @example
 * ```ts
 * import { IncomingTopicAliases } from "./topic_alias.ts";
 * const aliases = new IncomingTopicAliases(5);
 * console.assert(aliases.resolve("a/b", 1) === "a/b");
 * console.assert(aliases.resolve("", 1) === "a/b");
 * ```
 */
export class IncomingTopicAliases {
  #max: number;
  #byAlias = new Map<number, string>();

  /** `max` is the Topic Alias Maximum this side announced (0 when it announced none). */
  constructor(max: number) {
    this.#max = max;
  }

  /**
   * The topic of an incoming PUBLISH with `topic` and Topic Alias `alias`, following 5.0 section 3.3.4.
   * @throws {MqttError} Topic Alias invalid (0x94) for alias 0 or an alias above the maximum; Protocol Error
   * (0x82) for an empty topic with an alias that has no mapping, or with no alias at all.
   */
  resolve(topic: string, alias: number | undefined): string {
    if (alias === undefined) {
      if (topic === "") {
        // "a Protocol Error if the Topic Name is zero length and there is no Topic Alias" (5.0 section 3.3.2.1)
        throw new MqttError(REASON_CODE.ProtocolError, "PUBLISH has an empty topic and no Topic Alias");
      }
      return topic;
    }
    // "A Topic Alias value of 0 or greater than the Maximum Topic Alias is a Protocol Error, the receiver uses
    // DISCONNECT with Reason Code of 0x94" (5.0 section 3.3.4)
    if (alias === 0) {
      throw new MqttError(REASON_CODE.TopicAliasInvalid, "PUBLISH has Topic Alias 0 [MQTT-3.3.2-8 (5.0)]");
    }
    if (alias > this.#max) {
      throw new MqttError(
        REASON_CODE.TopicAliasInvalid,
        `PUBLISH has Topic Alias ${alias}, above the Topic Alias Maximum ${this.#max} ` +
          "[MQTT-3.3.2-9 (5.0)] [MQTT-3.3.2-11 (5.0)]",
      );
    }
    if (topic !== "") {
      this.#byAlias.set(alias, topic);
      return topic;
    }
    const known = this.#byAlias.get(alias);
    if (known === undefined) {
      // An unmapped alias with an empty topic is a Protocol Error (0x82), not 0x94 (5.0 section 3.3.4).
      throw new MqttError(
        REASON_CODE.ProtocolError,
        `PUBLISH has an empty topic and Topic Alias ${alias}, which was never set on this connection`,
      );
    }
    return known;
  }

  /** Forgets every alias, for a new connection [MQTT-3.3.2-7 (5.0)]. */
  reset(): void {
    this.#byAlias.clear();
  }
}
