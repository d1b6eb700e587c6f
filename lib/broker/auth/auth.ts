/**
 * The security seams: who may connect ({@linkcode Authenticator}) and what they may do ({@linkcode Authorizer}).
 *
 * @module
 */

/** What the broker knows about a client when it authenticates. */
export interface ConnectInfo {
  /** The client identifier from CONNECT, or the one the broker assigned when it was empty. */
  readonly clientId: string;
  /** The CONNECT User Name, when present. */
  readonly username?: string;
  /** The CONNECT Password, as sent: MQTT passwords are binary data. */
  readonly password?: Uint8Array;
  /** e.g. "127.0.0.1:53422" */
  readonly remoteAddress: string;
  /** The CN of a verified TLS client certificate, when the listener asks for one. */
  readonly certificateCommonName?: string;
  /** Whether the listener allows clients without credentials. */
  readonly allowAnonymous: boolean;
  /**
   * Aborted when the connection closes before the answer: an authenticator may drop the work it queued for it
   * (the password file drops a hash still waiting).
   */
  readonly signal?: AbortSignal;
}

/** The outcome of authentication: a v5 reason code (0 = accepted) and the identity to authorize with. */
export interface AuthResult {
  /** 0 accepts; otherwise the CONNACK reason code to refuse with, e.g. 0x86 Bad User Name or Password. */
  readonly reasonCode: number;
  /** The user name ACLs see (may come from a certificate). */
  readonly username?: string;
}

/** Decides whether a client may connect. */
export interface Authenticator {
  /** Decides on one CONNECT. Called once per connection, before the session is opened. */
  authenticate(info: ConnectInfo): Promise<AuthResult> | AuthResult;
  /**
   * After the credentials changed (a reload): whether a client this authenticator let in still passes, given the
   * CN of its verified TLS certificate when it presented one. False disconnects it (v5 DISCONNECT 0x87). Without
   * this method connected clients stay.
   */
  stillValid?(client: ClientIdentity, certificateCommonName?: string): boolean;
}

/** The identity an authorizer sees. */
export interface ClientIdentity {
  /** The client identifier of the connection (ACL `pattern` rules substitute it for `%c`). */
  readonly clientId: string;
  /** The user name authentication settled on (`%u`); absent for anonymous clients. */
  readonly username?: string;
}

/** Decides what an authenticated client may publish, subscribe to and receive. */
export interface Authorizer {
  /** May `client` publish to `topic`? (also checked for its will and retained messages) */
  canPublish(client: ClientIdentity, topic: string): boolean;
  /** May `client` subscribe to `filter`? */
  canSubscribe(client: ClientIdentity, filter: string): boolean;
  /** May `client` receive a message published to `topic`? */
  canReceive(client: ClientIdentity, topic: string): boolean;
}

/**
 * Checks no password, so a user name proves nothing: lets clients in only where the listener allows anonymous
 * ones (with the user name they give, for logs and ACLs of a broker that trusts its clients). Where it does not,
 * everyone is refused (0x87), as Mosquitto 2 with `allow_anonymous false` and no password file.
 */
export const ANONYMOUS_AUTHENTICATOR: Authenticator = {
  authenticate(info: ConnectInfo): AuthResult {
    if (!info.allowAnonymous) return { reasonCode: 0x87 };
    return info.username === undefined ? { reasonCode: 0 } : { reasonCode: 0, username: info.username };
  },
};

/** Allows everything. */
export const ALLOW_ALL: Authorizer = {
  canPublish: () => true,
  canSubscribe: () => true,
  canReceive: () => true,
};

/** One step's result in an enhanced-authentication conversation (v5, section 4.12). */
export type AuthStepResult =
  /** Send AUTH 0x18 with this data and wait for the client's next AUTH. */
  | { readonly kind: "continue"; readonly data: Uint8Array }
  /** Authenticated; `data` (if any) goes in the CONNACK / final AUTH. */
  | { readonly kind: "success"; readonly username?: string; readonly data?: Uint8Array }
  /** Refused with a reason code (default 0x87 Not authorized). */
  | { readonly kind: "failure"; readonly reasonCode?: number; readonly reason?: string };

/** The state of one enhanced-authentication exchange. */
export interface AuthConversation {
  /** Handles the client's Authentication Data (from CONNECT, or from an AUTH packet). */
  step(data: Uint8Array | undefined): Promise<AuthStepResult> | AuthStepResult;
}

/** An enhanced authentication method such as SCRAM-SHA-256, named by the v5 Authentication Method property. */
export interface EnhancedAuthMethod {
  /** The Authentication Method name, e.g. `"SCRAM-SHA-256"`. */
  readonly name: string;
  /** Starts a conversation for a client (a CONNECT, or a re-authentication). */
  begin(client: { readonly clientId: string; readonly username?: string }): AuthConversation;
}
