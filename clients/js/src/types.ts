// The wire types of stunfault's control protocol (docs/control.md), with the
// protocol's own snake_case names: a rule here is the JSON the server reads
// and the same table as [[rules]] in a TOML config. Nothing is renamed or
// mapped, so an object from the protocol documentation works as it is.

/** A STUN method a rule can match, or `channeldata` (not STUN). */
export type Method =
  | "binding"
  | "allocate"
  | "refresh"
  | "createpermission"
  | "channelbind"
  | "send"
  | "data"
  | "channeldata";

/** A STUN message class. */
export type MessageClass = "request" | "indication" | "success" | "error";

/** A transport as rules, the journal and events name it (TLS listeners count as tcp). */
export type Transport = "udp" | "tcp";

/** A transport of a STUN/TURN listener: tls is STUN/TURN over TLS over TCP (turns:). */
export type ListenerTransport = Transport | "tls";

/** One bound STUN/TURN listening socket. */
export interface Listener {
  transport: ListenerTransport;
  /** ip:port, the real port. */
  address: string;
  /** A tls listener's PEM certificate file (the configured one, or a self-signed one made at start). */
  cert_file?: string;
  /** A tls listener's base64 SHA-256 SubjectPublicKeyInfo: Chromium trusts it with --ignore-certificate-errors-spki-list. */
  spki_sha256?: string;
  /** A udp listener's sockets on its address, each with its own read loop ([server] read_loops). */
  read_loops?: number;
}

/** Which way a message goes: from the client (`in`) or to it (`out`). */
export type Direction = "in" | "out";

/** A Go duration string, such as `"150ms"`, `"2s"` or `"1m30s"`. */
export type Duration = string;

/** A condition on one STUN attribute of a message. */
export interface AttributeMatch {
  /** The attribute by name (`USERNAME`, `SOFTWARE`, ...) or number (decimal or `0x` hex). */
  type: string;
  /** Requires the attribute to be there (true) or absent (false). Any other condition implies presence. */
  present?: boolean;
  /** A substring of the attribute's raw value. */
  contains?: string;
  /** A regular expression (Go syntax) on the raw value. */
  regex?: string;
  /** Bounds on the value's length in bytes (0: no bound). */
  min_len?: number;
  max_len?: number;
}

/** Makes a rule depend on the simulated webhook (`POST /webhook/NAME`). */
export interface WebhookMatch {
  /** The webhook (`[webhooks.NAME]`); empty means any. */
  name?: string;
  /** At least this many HTTP requests held open now (sync mode). */
  min_inflight?: number;
  /** At least this many held requests plus async work in progress. */
  min_pending?: number;
  /** A regular expression a held (or pending) request's body must match. */
  body?: string;
  /** A held request at least this big. */
  min_body_bytes?: number;
  min_header_bytes?: number;
  /** A matching request that ended this long ago still counts. */
  window?: Duration;
}

/** Selects messages: every field given must hold; a list means any of its values. */
export interface Match {
  /** Empty: every STUN method (not channeldata). */
  methods?: Method[];
  classes?: MessageClass[];
  /** `in` (the default) or `out`. */
  direction?: Direction;
  transports?: Transport[];
  /** Client address prefixes in CIDR notation. */
  sources?: string[];
  /** A regular expression on USERNAME (Binding requests and first Allocates carry none). */
  username?: string;
  /** Bounds on the whole message in bytes (0: no bound). */
  min_size?: number;
  max_size?: number;
  /** Which copy of one transaction from one client: 1 the first send, 2 the first retransmit. */
  transmission?: number;
  /** Requires MESSAGE-INTEGRITY (true) or its absence (false). */
  authenticated?: boolean;
  attributes?: AttributeMatch[];
  webhook?: WebhookMatch;
}

/** The kind of an action. */
export type ActionType =
  | "error"
  | "drop"
  | "delay"
  | "duplicate"
  | "truncate"
  | "corrupt"
  | "mapped_address"
  | "close"
  | "ratelimit"
  | "pass";

/** What happens to a message a rule fires on: `type` and that kind's parameters. */
export interface Action {
  type: ActionType;
  /** error: the code (300-699) and reason phrase. */
  code?: number;
  reason?: string;
  /** error: `auto` (sign when the request was signed), `none` or `bad`. */
  integrity?: "auto" | "none" | "bad";
  /** error 300: the ALTERNATE-SERVER address (ip:port). */
  alternate?: string;
  /** delay: how long, and a random extra of up to jitter. */
  delay?: Duration;
  jitter?: Duration;
  /** duplicate: copies sent besides the original. */
  copies?: number;
  /** truncate: bytes kept. */
  length?: number;
  /** corrupt: what, and how many bytes flipped. */
  target?: "header" | "attribute" | "fingerprint";
  count?: number;
  /** mapped_address: the ip:port put in XOR-MAPPED-ADDRESS. */
  address?: string;
  /** ratelimit: per second, burst, and the action for the excess. */
  rate?: number;
  burst?: number;
  then?: Action;
}

/** A rule: which messages it matches and what happens to them. */
export interface Rule {
  /** Unique; adding a rule with a known id replaces it. Generated when absent. */
  id?: string;
  description?: string;
  labels?: Record<string, string>;
  /** Lower runs first; ties keep insertion order; the first rule that fires decides. */
  priority?: number;
  /** Absent means true. */
  enabled?: boolean;
  /** 0..1 per message; absent means 1. */
  probability?: number;
  /** Fire at most this many times (0: unlimited). */
  times?: number;
  /** Let the first this many matches through. */
  after?: number;
  /** Fire on every Nth eligible match. */
  every?: number;
  /** Expire this long after being added. */
  for?: Duration;
  /** A state machine: fire only in requires_state, then move to sets_state. */
  machine?: string;
  requires_state?: string;
  sets_state?: string;
  match: Match;
  action: Action;
}

/** A rule as the server holds it, with its counters. */
export interface RuleStatus {
  rule: Rule & { id: string };
  matched: number;
  fired: number;
  let_through: number;
  /** When a rule with `for` stops applying (RFC 3339). */
  expires?: string;
  expired?: boolean;
}

/** Selects journal entries and events: every field given must hold. */
export interface Query {
  rule?: string;
  method?: Method;
  class?: MessageClass;
  transport?: Transport;
  direction?: Direction;
  /** `127.0.0.1:5000` (that socket), `127.0.0.1` (any port) or `10.0.0.0/8`. */
  client?: string;
  labels?: Record<string, string>;
  /** Entries with a greater seq (journal ops only). */
  since_seq?: number;
  /** At most this many, oldest first (journal.query only). */
  limit?: number;
}

/** Where a timed scenario ([[scenarios.NAME.steps]]) stands. */
export interface ScenarioStep {
  scenario: string;
  /** The active step's index, from 0, of `steps`. */
  index: number;
  steps: number;
  /** Repeats completed before this one. */
  cycle?: number;
  /** When the step became active, on the server's clock (RFC 3339). */
  started: string;
  /** When the next step starts, and how long until then; absent on the last step of a scenario that does not repeat. */
  next?: string;
  next_in?: Duration;
}

/** One journal entry: a rule firing, or a timed scenario's step change (`action` "step"). */
export interface Entry {
  seq: number;
  /** RFC 3339 with nanoseconds. */
  time: string;
  /** The rule that fired ("" for a step change). */
  rule: string;
  /**
   * The action taken (for a ratelimit, its `then`'s); `delay_overflow` for
   * a delay the server had no room for (the message passed at once);
   * `step` for a step change.
   */
  action: ActionType | "delay_overflow" | "step";
  /** The code of an error action. */
  code?: number;
  method: Method;
  /** Absent for ChannelData. */
  class?: MessageClass;
  transport: Transport;
  direction: Direction;
  /** The client's address (the destination of an outbound message). */
  src: string;
  size: number;
  labels?: Record<string, string>;
  /** The server's RNG seed (exact up to 2^53, as every JSON number read by JavaScript). */
  seed: number;
  /** A step change's new step. */
  step?: ScenarioStep;
}

/** A decision event: a rule firing, as the journal records it, pushed to a subscriber. */
export interface DecisionEvent extends Entry {
  event: "decision";
  subscription: number;
}

/** A timed scenario moved to another step (a journal entry with action "step" and `step` set). */
export interface StepEvent extends Entry {
  event: "step";
  subscription: number;
  step: ScenarioStep;
}

/** Says `count` events of the subscription were dropped because it did not keep up. */
export interface LostEvent {
  event: "lost";
  subscription: number;
  count: number;
}

/** What a subscription yields. */
export type SubscriptionEvent = DecisionEvent | StepEvent | LostEvent;

/** The result of hello. */
export interface Hello {
  protocol: number;
  version: string;
  seed: number;
  revision: number;
  scenario?: string;
  ops: string[];
  capabilities?: string[];
}

/** The result of stats.get. */
export interface Stats {
  /** `tcp` counts a tcp or tls listener's connections; `loops` are a udp listener's read loops, with the datagrams each read. */
  listeners?: {
    transport: ListenerTransport;
    address: string;
    tcp?: { open: number; refused: number; timed_out: number };
    loops?: { datagrams: number }[];
  }[];
  allocations?: number;
  webhooks?: Record<string, { inflight: number; pending: number }>;
  revision: number;
  scenario?: string;
  rules: { id: string; enabled: boolean; matched: number; fired: number; let_through: number }[];
  machines?: Record<string, string>;
  journal: { len: number; last_seq: number };
  /** What the interception layer did besides applying rules. */
  intercept?: {
    delays_pending: number;
    delayed_bytes: number;
    delay_overflows: number;
    panics: number;
    reply_errors: number;
  };
}

/** The result of clock.get and clock.advance. */
export interface ClockResult {
  /** The server's time (after the advance), RFC 3339. */
  now: string;
  /** A manual clock ([server] clock = "manual"), which clock.advance moves. */
  manual: boolean;
  /** Timers a manual clock still has armed. */
  pending?: number;
}

/** Runtime changes to a simulated webhook (webhook.set); absent fields keep their value. */
export interface WebhookSettings {
  latency?: Duration;
  mode?: "sync" | "async";
  /** The HTTP status it answers (100-599). */
  status?: number;
  /** Pending requests that count for min_pending without any HTTP call (0 removes them). */
  synthetic_pending?: number;
}

/** The result of webhook.set: the request, echoed. */
export interface WebhookResult extends WebhookSettings {
  name: string;
}

/** The result of rules.replace: the ids that are new, gone, and kept. */
export interface ReplaceResult {
  added: string[];
  removed: string[];
  replaced: string[];
}

/** A named rule set, as a [scenarios.NAME] table of the config: rules, or a timeline of steps. */
export interface Scenario {
  description?: string;
  /** A plain scenario's rule set. Give rules or steps, not both. */
  rules?: Rule[];
  /** A timed scenario: the first step at "0s", each later one after the one before; each step's rules are the whole set until the next. */
  steps?: { at: Duration; rules?: Rule[] }[];
  /** Start the steps over this long after each start (after the last step's at). */
  repeat?: Duration;
}

/** The result of scenarios.load: the names it added and replaced, and every scenario the server now has. */
export interface ScenariosLoadResult {
  added: string[];
  replaced: string[];
  scenarios: string[];
}

/** The result of scenarios.list and scenarios.activate. */
export interface ScenariosResult {
  scenarios?: string[];
  /** The scenario activated last, unless rules changed since. */
  active?: string;
  /** Where a running timed scenario stands. */
  step?: ScenarioStep;
}

/** A journal entry a query almost selected, with the query fields it failed. */
export interface NearMiss {
  entry: Entry;
  /** `rule`, `method`, `class`, `transport`, `direction`, `client`, `labels.KEY`, `since_seq`. */
  failed: string[];
}

/** The result of journal.verify. A mismatch is not an error: check `match`. */
export interface VerifyResult {
  match: boolean;
  expected: number;
  actual: number;
  near_misses?: NearMiss[];
}

/** The result of subscribe. */
export interface SubscribeResult {
  subscription: number;
  /** Journal entries that follow the reply before live events. */
  replayed: number;
  /** The journal no longer held every firing after since_seq: the replay may miss some. */
  truncated?: boolean;
  last_seq: number;
}

/** What reset clears; all four when none is given. */
export type ResetScope = "rules" | "journal" | "counters" | "machines";

/** One entry of RTCConfiguration.iceServers, as the browser's RTCIceServer. */
export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

/** A mutating op's result, with the revision the packet path reads now that the reply is here. */
export type WithRevision<T> = T & { revision: number };

/** One permission of an allocation. */
export interface AllocationPermission {
  /** The peer's IP address. */
  peer: string;
  /** Time to expiry: [relay].permission_lifetime from the last CreatePermission or ChannelBind success for the peer. */
  lifetime_left: Duration;
}

/** One channel binding of an allocation. */
export interface AllocationChannel {
  number: number;
  /** The peer as ip:port. */
  peer: string;
}

/** One live TURN allocation, as allocations.list reports it. */
export interface Allocation {
  /** The client's address (ip:port), as allocations.expire and connections.close take it. */
  client: string;
  /** The listener's address (ip:port) the client allocated on. */
  server: string;
  /** The client's transport to the server (tls counts as tcp). */
  transport: Transport;
  /** The USERNAME the client allocated with. */
  username: string;
  /** The relayed transport address (ip:port). */
  relay: string;
  /** When pion made the allocation (RFC 3339, wall time). */
  created: string;
  /**
   * Time to expiry: the LIFETIME of pion's last Allocate or Refresh success,
   * from when it went out (the default [relay].allocation_lifetime, or the
   * shorter one the client asked for). On real time: pion's lifetimes do
   * not follow a manual clock.
   */
  lifetime_left: Duration;
  permissions: AllocationPermission[];
  channels: AllocationChannel[];
}

/** Selects the allocations allocations.expire ends: exactly one of client, username or all. */
export type AllocationSelector = { client: string } | { username: string } | { all: true };

/** One permission permissions.expire ended. */
export interface ExpiredPermission {
  /** The allocation's client and listener (ip:port) and relayed address. */
  client: string;
  server: string;
  relay: string;
  /** The peer's IP address. */
  peer: string;
}

/** One channel binding channels.expire ended. */
export interface ExpiredChannel {
  /** The allocation's client and listener (ip:port) and relayed address. */
  client: string;
  server: string;
  relay: string;
  number: number;
  /** The peer the number was bound to (ip:port). */
  peer: string;
}
