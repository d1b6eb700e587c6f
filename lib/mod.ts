/**
 * The public API: packet types, the codec, topic rules and the router, the broker and the client.
 *
 * @module
 */

export { MqttError, type MqttErrorOptions } from "./mqtt_error.ts";
export {
  CONNACK_RETURN_CODE_V3,
  connackCodeV3,
  connackReasonFromV3,
  type ConnackReturnCodeV3,
  REASON_CODE,
  type ReasonCode,
  reasonName,
  subackCodeV3,
  VALID_REASON_CODES,
} from "./packet/reason_code.ts";
export {
  PACKET_TYPE,
  packetName,
  type PacketType,
  type ProtocolVersion,
  type QoS,
} from "./packet/packet_type.ts";
export {
  PROPERTIES,
  type Properties,
  PROPERTY_CONTEXT,
  type PropertyContext,
  type PropertySpec,
  type PropertyType,
} from "./packet/properties.ts";
export type { Packet } from "./packet/packet.ts";
export type { ConnectPacket, WillMessage } from "./packet/connect.ts";
export type { ConnackPacket } from "./packet/connack.ts";
export { encodePublish, patchPublish, type PublishPacket, publishPacketIdOffset } from "./packet/publish.ts";
export type { PubackPacket } from "./packet/puback.ts";
export type { PubrecPacket } from "./packet/pubrec.ts";
export type { PubrelPacket } from "./packet/pubrel.ts";
export type { PubcompPacket } from "./packet/pubcomp.ts";
export type { SubscribePacket, SubscriptionRequest } from "./packet/subscribe.ts";
export type { SubackPacket } from "./packet/suback.ts";
export type { UnsubscribePacket } from "./packet/unsubscribe.ts";
export type { UnsubackPacket } from "./packet/unsuback.ts";
export { PINGREQ, type PingreqPacket } from "./packet/pingreq.ts";
export { PINGRESP, type PingrespPacket } from "./packet/pingresp.ts";
export type { DisconnectPacket } from "./packet/disconnect.ts";
export type { AuthPacket } from "./packet/auth.ts";
export { decode, decodePacket } from "./packet/decode.ts";
export { encode } from "./packet/encode.ts";
export { type Frame, Framer, type FramerOptions } from "./codec/framer.ts";
export { type Clock, ManualClock, REAL_CLOCK, type TimerId } from "./clock.ts";
export { type ByteStream, writeAll } from "./transport/transport.ts";
export { memoryPair } from "./transport/memory.ts";
export { Broker, BROKER_VERSION, type ListenAddress, type ListenOptions } from "./broker/broker.ts";
export { type BrokerOptions, EXPIRY_NEVER, type ResolvedOptions } from "./broker/options.ts";
export type { BrokerStats } from "./broker/core.ts";
export type { BrokerCounters } from "./broker/counters.ts";
export { Histogram } from "./admin/metrics/histogram.ts";
export type { ConnectionInfo } from "./broker/connection.ts";
export {
  BrokerEvents,
  type ClientEvent,
  type ClientEventKind,
  type ClientEventListener,
  DISCONNECT_REASONS,
  type DisconnectReason,
  REFUSAL_REASONS,
  type RefusalReason,
} from "./broker/events.ts";
export {
  ClientHistory,
  type ClientHistoryOptions,
  type ClientHistoryQuery,
} from "./broker/client_history.ts";
export {
  MessageTraces,
  TRACE_LIMITS,
  type TraceDelivery,
  type TraceEnd,
  type TraceEvent,
  type TraceInfo,
  type TraceListener,
  type TraceOptions,
  type TraceSkip,
} from "./broker/trace.ts";
export {
  ALLOW_ALL,
  ANONYMOUS_AUTHENTICATOR,
  type AuthConversation,
  type Authenticator,
  type Authorizer,
  type AuthResult,
  type AuthStepResult,
  type ClientIdentity,
  type ConnectInfo,
  type EnhancedAuthMethod,
} from "./broker/auth/auth.ts";
export {
  jsonLogLine,
  leveledLogger,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFields,
  type LogFormat,
  type Logger,
  type LogLevel,
  logLineWriter,
  type LogRecord,
  type LogValue,
  SILENT_LOGGER,
  textLogLine,
} from "./broker/logger.ts";
export { LOG_RING_SIZE, type LogQuery, type LogRecordListener, LogRing } from "./broker/log_ring.ts";
export type {
  LoadedSession,
  Message,
  OutgoingMessage,
  OutgoingState,
  PendingWill,
  PersistedState,
  Persistence,
  PersistenceOp,
  StoredSession,
} from "./broker/storage/persistence.ts";
export {
  isWildcardFilter,
  matchesFilter,
  parseSharedFilter,
  type SharedFilter,
  type TopicLimits,
  validateTopicFilter,
  validateTopicName,
} from "./topic/topic.ts";
export {
  type Delivery,
  type MatchOptions,
  type Subscription,
  type SubscriptionRouter,
  TopicRouter,
} from "./topic/router.ts";
export {
  SCRAM_SHA_256,
  type ScramClient,
  scramClient,
  type ScramCredential,
  scramCredential,
} from "./auth/scram.ts";
export { type ScramLookup, ScramSha256 } from "./broker/auth/scram.ts";
export { hashPassword, type HashPasswordOptions, type PasswordHash } from "./auth/password_hash.ts";
export {
  PasswordFile,
  PasswordFileAuthenticator,
  type PasswordFileAuthenticatorOptions,
  PasswordFileError,
  type PasswordFileOptions,
  type VerifyOptions,
} from "./broker/auth/password_file.ts";
export { PasswordQueueFullError } from "./broker/auth/hash_queue.ts";
export type { LoginThrottleOptions } from "./broker/auth/login_throttle.ts";
export {
  type AclAccess,
  AclAuthorizer,
  type AclAuthorizerOptions,
  AclFile,
  AclFileError,
  type AclRule,
} from "./broker/auth/acl_file.ts";
export type { AclDecidingRule, AclExplanation, AclQuery } from "./broker/auth/acl_explain.ts";
export { MqttClient } from "./client/client.ts";
export type {
  ClientState,
  ClientStatus,
  CloseOptions,
  ConnectProperties,
  ConnectResult,
  DisconnectProperties,
  MqttClientOptions,
  PacketDirection,
  PublishOptions,
  PublishProperties,
  PublishResult,
  ReconnectOptions,
  ServerLimits,
  SubscribeOptions,
  SubscribeResult,
  SubscriptionOptions,
  TopicSubscription,
  UnsubscribeOptions,
  WillOptions,
  WillProperties,
} from "./client/options.ts";
export type { MessagesOptions, MqttMessage } from "./client/inbox.ts";
export {
  type Connector,
  tcpConnector,
  tlsConnector,
  type TlsOptions,
  unixConnector,
  webSocketConnector,
} from "./client/connector.ts";
export { type ClientAuthExchange, type EnhancedAuth, scramSha256 } from "./client/enhanced_auth.ts";
export { backoffDelay, type BackoffOptions } from "./client/backoff.ts";
export { MemoryPersistence } from "./broker/storage/memory_persistence.ts";
export {
  SQLITE_SCHEMA_VERSION,
  SqlitePersistence,
  type SqlitePersistenceOptions,
} from "./broker/storage/sqlite_persistence.ts";
export {
  anonymousAllowed,
  type BoundListener,
  certificateIdentity,
  type CertificateReload,
  DEFAULT_WEBSOCKET_PATH,
  isLoopback,
  LISTENER_TYPES,
  type ListenerBase,
  ListenerError,
  type ListenerOptions,
  type ListenerType,
  type RunningListeners,
  type ServerCertificate,
  startListeners,
  type StartListenersOptions,
  type TcpListenerOptions,
  type TlsListenerOptions,
  type WsListenerOptions,
  type WssListenerOptions,
} from "./broker/server/listeners.ts";
export {
  type BrokerConfig,
  brokerOptions,
  ConfigError,
  type DirectLimit,
  type LimitsConfig,
  type ListenerConfig,
  listenerOptions,
  loadConfig,
  parseConfig,
} from "./broker/server/config.ts";
export {
  MQTT_SUBPROTOCOLS,
  WebSocketByteStream,
  type WebSocketByteStreamOptions,
} from "./transport/websocket.ts";
export {
  type ClientCertificateTlsOptions,
  type ClientCertificateTlsServer,
  listenTlsWithClientCertificates,
  type TlsPeer,
} from "./transport/tls.ts";
