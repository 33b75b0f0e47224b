// Package stunfault drives stunfault, the STUN/TURN server that fails on
// purpose, from Node: connect() to its control socket (docs/control.md), and
// startStunfault() to run one for a test on free loopback ports.

export { connect, socketURL, Client, RulesAPI, ScenariosAPI, JournalAPI, MachinesAPI, WebhooksAPI, ClockAPI, AllocationsAPI, NoncesAPI, ConnectionsAPI, DEFAULT_URL, DEFAULT_TIMEOUT } from "./client.js";
export type { ConnectOptions, ReconnectOptions, CallOptions, CallResult, RuleResult, AddRulesResult, EntriesResult } from "./client.js";
export { Subscription, DEFAULT_EVENT_BUFFER } from "./subscription.js";
export type { SubscribeOptions, WaitOptions } from "./subscription.js";
export { StunfaultError, isStunfaultError } from "./errors.js";
export type { ErrorCode, ProtocolErrorCode, ClientErrorCode, ErrorDetail, WireError } from "./errors.js";
export { startStunfault } from "./fixture.js";
export type { StartOptions, ReadyLine, Stunfault } from "./fixture.js";
export type * from "./types.js";
