import WebSocket from "ws";

import { StunfaultError, type WireError } from "./errors.js";
import { Subscription, type SubscribeOptions, type WaitOptions } from "./subscription.js";
import type {
  Allocation,
  AllocationSelector,
  ExpiredChannel,
  ExpiredPermission,
  DecisionEvent,
  Entry,
  Hello,
  Query,
  ResetScope,
  ReplaceResult,
  Rule,
  RuleStatus,
  ClockResult,
  Scenario,
  ScenariosLoadResult,
  ScenariosResult,
  Stats,
  SubscribeResult,
  SubscriptionEvent,
  VerifyResult,
  Duration,
  WebhookResult,
  WebhookSettings,
  WithRevision,
} from "./types.js";

/** Where stunfault's control socket listens by default. */
export const DEFAULT_URL = "ws://127.0.0.1:8478/control";

/** How long a call waits for its reply unless told otherwise, in milliseconds. */
export const DEFAULT_TIMEOUT = 10_000;

/** Reconnection after the connection drops; off unless asked for. */
export interface ReconnectOptions {
  /** Dial attempts per drop before giving up (default 5). */
  attempts?: number;
  /** The first wait between attempts, doubled after each, in ms (default 100). */
  minDelay?: number;
  /** The longest wait between attempts, in ms (default 2000). */
  maxDelay?: number;
}

/** Options of connect. */
export interface ConnectOptions {
  /** Sent as `Authorization: Bearer TOKEN` when set ([http].token). */
  token?: string;
  /** Extra handshake headers (Origin, for instance). */
  headers?: Record<string, string>;
  /** Bounds the handshake and, unless a call says otherwise, every call, in ms (default 10000). */
  timeout?: number;
  /**
   * Reconnect when the connection drops (not after close()). Off by
   * default: a dropped connection fails the calls in flight and ends every
   * subscription with a `closed` error. When on, calls in flight still fail
   * with `closed` (the client cannot know whether they took effect), later
   * calls wait for the new connection, and every open subscription is
   * subscribed again with since_seq set to the last seq it received, so it
   * misses nothing the journal still holds and repeats nothing.
   */
  reconnect?: boolean | ReconnectOptions;
}

/** Options every call takes. */
export interface CallOptions {
  /** How long to wait for the reply, in ms (default: the client's timeout). */
  timeout?: number;
  /** Gives up (with an `aborted` error) when it fires. */
  signal?: AbortSignal;
}

/** A reply's result with its revision (mutating ops only). */
export interface CallResult<T> {
  result: T;
  revision: number | undefined;
}

interface Pending {
  op: string;
  resolve: (r: CallResult<unknown>) => void;
  reject: (e: StunfaultError) => void;
  onReply?: ((ok: boolean, result: unknown) => void) | undefined;
}

interface Reply {
  id?: number;
  ok: boolean;
  revision?: number;
  result?: unknown;
  error?: WireError;
}

/**
 * Connects to the control socket at url (`ws://HOST:PORT/control`; http://
 * and https:// are taken for ws:// and wss://, and a URL without a path gets
 * /control). A refused handshake throws the server's StunfaultError
 * (`unauthorized`, `forbidden_origin`); an unreachable server throws one
 * with code `connect`. Call close() when done.
 */
export async function connect(url: string = DEFAULT_URL, opts: ConnectOptions = {}): Promise<Client> {
  const c = new Client(socketURL(url), opts);
  await c.open();
  return c;
}

/** Turns what a user typed into a WebSocket URL. */
export function socketURL(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch (e) {
    throw new StunfaultError("connect", `bad URL ${JSON.stringify(raw)}: want ws://HOST:PORT/control`, { cause: e });
  }
  switch (u.protocol) {
    case "ws:":
    case "wss:":
      break;
    case "http:":
      u.protocol = "ws:";
      break;
    case "https:":
      u.protocol = "wss:";
      break;
    default:
      throw new StunfaultError("connect", `bad URL ${JSON.stringify(raw)}: want ws://HOST:PORT/control`);
  }
  if (u.pathname === "" || u.pathname === "/") u.pathname = "/control";
  return u.toString();
}

/**
 * Client is one connection to a control socket, with one typed method per
 * op, grouped as the ops are (client.rules.add, client.journal.verify, ...).
 * Calls may overlap: the server answers them in order. Create it with
 * connect; close it with close().
 */
export class Client {
  /** The control URL this client dials. */
  readonly url: string;
  /** rules.*: the active rules. */
  readonly rules: RulesAPI;
  /** scenarios.*: the config's named rule sets. */
  readonly scenarios: ScenariosAPI;
  /** journal.*: what fired. */
  readonly journal: JournalAPI;
  /** machines.*: the state machines of stateful rules. */
  readonly machines: MachinesAPI;
  /** webhook.set: the simulated webhooks. */
  readonly webhooks: WebhooksAPI;
  /** clock.*: the server's clock, which a manual one lets a test move. */
  readonly clock: ClockAPI;
  /** allocations.*: the live TURN allocations. */
  readonly allocations: AllocationsAPI;
  /** nonces.rotate: stale nonces on demand. */
  readonly nonces: NoncesAPI;
  /** connections.close: the TCP and TLS connections of TURN clients. */
  readonly connections: ConnectionsAPI;

  readonly #opts: ConnectOptions;
  readonly #timeout: number;
  #ws: WebSocket | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, Pending>();
  /** Open subscriptions, by the server's subscription id on the current connection. */
  readonly #subs = new Map<number, Subscription>();
  /** Set while a reconnect is under way: later calls wait for it. */
  #reconnecting: Promise<void> | undefined;
  #closedByUser = false;
  #finished = false;
  #err: StunfaultError | undefined;
  #reconnects = 0;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;

  /** Use connect. */
  constructor(url: string, opts: ConnectOptions) {
    this.url = url;
    this.#opts = opts;
    this.#timeout = opts.timeout ?? DEFAULT_TIMEOUT;
    this.rules = new RulesAPI(this);
    this.scenarios = new ScenariosAPI(this);
    this.journal = new JournalAPI(this);
    this.machines = new MachinesAPI(this);
    this.webhooks = new WebhooksAPI(this);
    this.clock = new ClockAPI(this);
    this.allocations = new AllocationsAPI(this);
    this.nonces = new NoncesAPI(this);
    this.connections = new ConnectionsAPI(this);
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  /** Resolves when the client has closed for good (close(), or a drop it did not or could not reconnect from). */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Why the client closed (code `closed`), or undefined while it is open or after close(). */
  get error(): StunfaultError | undefined {
    return this.#err;
  }

  /** How many times the client reconnected after a drop. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** @internal Dials; connect calls it. */
  async open(): Promise<void> {
    this.#ws = await this.#dial();
  }

  #dial(): Promise<WebSocket> {
    const headers: Record<string, string> = { ...this.#opts.headers };
    if (this.#opts.token) headers["Authorization"] = `Bearer ${this.#opts.token}`;
    return new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(this.url, { headers, handshakeTimeout: this.#timeout, maxPayload: 64 << 20 });
      let settled = false;
      const fail = (e: StunfaultError) => {
        if (settled) return;
        settled = true;
        ws.removeAllListeners();
        ws.on("error", () => {});
        ws.terminate();
        reject(e);
      };
      ws.once("unexpected-response", (_req, res) => {
        // A refused handshake: the body is a reply with the error envelope.
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (b: Buffer) => {
          if (size < 1 << 16) chunks.push(b);
          size += b.length;
        });
        res.on("end", () => {
          const status = `${res.statusCode} ${res.statusMessage ?? ""}`.trim();
          try {
            const rep = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Reply;
            if (rep.error) {
              const e = StunfaultError.fromWire(rep.error);
              fail(new StunfaultError(e.code, `dial ${this.url}: ${status}: ${e.message}`, { field: e.field, details: e.details }));
              return;
            }
          } catch {
            // not a reply: fall through
          }
          fail(new StunfaultError("connect", `dial ${this.url}: ${status}`));
        });
        res.on("error", (err: Error) => fail(new StunfaultError("connect", `dial ${this.url}: ${err.message}`, { cause: err })));
      });
      ws.once("error", (err) => fail(new StunfaultError("connect", `dial ${this.url}: ${err.message}`, { cause: err })));
      ws.once("open", () => {
        if (settled) return;
        settled = true;
        ws.removeAllListeners();
        ws.on("message", (data, isBinary) => this.#onMessage(data, isBinary));
        ws.on("error", () => {}); // "close" follows and says it all
        ws.once("close", (code, reason) => this.#onClose(ws, code, reason.toString()));
        resolve(ws);
      });
    });
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary) return;
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(data.toString()) as Record<string, unknown>;
    } catch {
      return; // the server only sends objects
    }
    if (typeof m !== "object" || m === null) return;
    if (typeof m["event"] === "string") {
      const sub = this.#subs.get(m["subscription"] as number);
      sub?._deliver(m as unknown as SubscriptionEvent);
      return;
    }
    const rep = m as unknown as Reply;
    if (typeof rep.id !== "number") return; // about a message with no usable id: not ours
    const p = this.#pending.get(rep.id);
    if (!p) return; // its caller gave up
    this.#pending.delete(rep.id);
    // Runs here, before any later message is handled, so a subscription is
    // routed before its first event arrives.
    p.onReply?.(rep.ok, rep.result);
    if (!rep.ok) {
      p.reject(
        rep.error
          ? StunfaultError.fromWire(rep.error, p.op)
          : new StunfaultError("bad_reply", "reply with neither ok nor error", { op: p.op }),
      );
      return;
    }
    p.resolve({ result: rep.result ?? {}, revision: rep.revision });
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    const why = `connection closed (${code}${reason ? " " + reason : ""})`;
    this.#failPending(why);
    if (this.#closedByUser) {
      this.#finish(undefined);
      return;
    }
    const rc = this.#opts.reconnect;
    if (!rc) {
      this.#finish(new StunfaultError("closed", why));
      return;
    }
    const lost = [...this.#subs.values()];
    this.#subs.clear();
    this.#reconnecting = this.#reconnect(rc === true ? {} : rc, lost, why);
  }

  async #reconnect(rc: ReconnectOptions, subs: Subscription[], why: string): Promise<void> {
    const attempts = rc.attempts ?? 5;
    let delay = rc.minDelay ?? 100;
    let last: unknown;
    for (let i = 0; i < attempts && !this.#closedByUser; i++) {
      if (i > 0) {
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, rc.maxDelay ?? 2000);
      }
      let ws: WebSocket;
      try {
        ws = await this.#dial();
      } catch (e) {
        last = e;
        continue;
      }
      if (this.#closedByUser) {
        ws.terminate(); // close() came while dialling: it has finished already
        break;
      }
      this.#ws = ws;
      this.#reconnecting = undefined;
      this.#reconnects++;
      for (const s of subs) {
        s._resubscribe().catch((e: unknown) => s._end(e instanceof StunfaultError ? e : new StunfaultError("closed", String(e))));
      }
      return;
    }
    this.#reconnecting = undefined;
    if (this.#closedByUser) {
      for (const s of subs) s._end(undefined);
      return;
    }
    const msg = last instanceof Error ? last.message : "closed";
    const err = new StunfaultError("closed", `${why}; reconnecting failed after ${attempts} attempts: ${msg}`, { cause: last });
    for (const s of subs) s._end(err);
    this.#finish(err);
  }

  #failPending(why: string): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(new StunfaultError("closed", why, { op: p.op }));
  }

  #finish(err: StunfaultError | undefined): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#err = err;
    const subs = [...this.#subs.values()];
    this.#subs.clear();
    for (const s of subs) s._end(err);
    this.#resolveDone();
  }

  /**
   * Closes the connection with a normal close frame, fails the calls in
   * flight with `closed` and ends every subscription (their iterators
   * finish). Safe to call more than once.
   */
  async close(): Promise<void> {
    if (this.#closedByUser) return this.#done;
    this.#closedByUser = true;
    const ws = this.#ws;
    if (!ws || ws.readyState === WebSocket.CLOSED || this.#reconnecting) {
      this.#failPending("client closed");
      this.#finish(undefined);
      return this.#done;
    }
    const timer = setTimeout(() => ws.terminate(), 1000);
    ws.close(1000);
    await this.#done;
    clearTimeout(timer);
  }

  /**
   * Sends one request and resolves with the reply's result and revision.
   * params are the op's parameters (they sit next to id and op). A failed op
   * rejects with the server's StunfaultError. The typed methods are built on
   * call; it is public for ops newer than this client.
   */
  async call<T = unknown>(op: string, params: object = {}, opts: CallOptions = {}): Promise<CallResult<T>> {
    return this._call<T>(op, params, opts, undefined);
  }

  /** @internal call with a hook run in the message handler when the reply arrives. */
  async _call<T>(op: string, params: object, opts: CallOptions, onReply: Pending["onReply"]): Promise<CallResult<T>> {
    const timeout = opts.timeout ?? this.#timeout;
    const deadline = Date.now() + timeout;
    const signal = opts.signal;
    if (signal?.aborted) throw new StunfaultError("aborted", `${op}: aborted`, { op, cause: signal.reason });
    if (this.#reconnecting) {
      await withDeadline(this.#reconnecting, deadline, op, signal);
    }
    const ws = this.#ws;
    if (this.#closedByUser || this.#err || !ws || ws.readyState !== WebSocket.OPEN) {
      throw this.#err ?? new StunfaultError("closed", `${op}: the client is closed`, { op });
    }
    const id = ++this.#nextId;
    const msg = JSON.stringify({ ...params, id, op });
    return new Promise<CallResult<T>>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.#pending.delete(id);
        cleanup();
        reject(new StunfaultError("aborted", `${op}: aborted`, { op, cause: signal?.reason }));
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      this.#pending.set(id, {
        op,
        onReply,
        resolve: (r) => {
          cleanup();
          resolve(r as CallResult<T>);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      });
      timer = setTimeout(() => {
        this.#pending.delete(id);
        cleanup();
        reject(new StunfaultError("timeout", `${op}: no reply within ${timeout} ms`, { op }));
      }, Math.max(0, deadline - Date.now()));
      signal?.addEventListener("abort", onAbort, { once: true });
      ws.send(msg, (err) => {
        if (!err) return;
        const p = this.#pending.get(id);
        if (!p) return;
        this.#pending.delete(id);
        p.reject(new StunfaultError("closed", `${op}: ${err.message}`, { op, cause: err }));
      });
    });
  }

  /** @internal Calls op and returns its result with the revision merged in. */
  async _mutate<T extends object>(op: string, params: object, opts?: CallOptions): Promise<WithRevision<T>> {
    const { result, revision } = await this.call<T>(op, params, opts);
    return { ...result, revision: revision ?? 0 };
  }

  /** @internal Registers a subscription under its server id; Subscription calls it from the reply hook. */
  _route(id: number, s: Subscription): void {
    this.#subs.set(id, s);
  }

  /** @internal Forgets a subscription's server id. */
  _unroute(id: number): boolean {
    return this.#subs.delete(id);
  }

  /** hello: the server's version, protocol, seed, revision and ops. */
  async hello(opts?: CallOptions): Promise<Hello> {
    return (await this.call<Hello>("hello", {}, opts)).result;
  }

  /** stats.get: listeners, allocations, webhook load, rule counters, journal size. */
  async stats(opts?: CallOptions): Promise<Stats> {
    return (await this.call<Stats>("stats.get", {}, opts)).result;
  }

  /** reset: clears the given scopes, or all four when none is given. */
  async reset(scopes: ResetScope[] = [], opts?: CallOptions): Promise<WithRevision<{ reset: ResetScope[] }>> {
    return this._mutate("reset", scopes.length ? { scope: scopes } : {}, opts);
  }

  /**
   * subscribe: streams rule firings as they happen, as an async iterator.
   * With sinceSeq, the journal entries after it are replayed first, then
   * events go on live, with no gap and no duplicate. Close it (or break out
   * of the for-await loop) when done.
   */
  async subscribe(opts: SubscribeOptions = {}): Promise<Subscription> {
    const s = new Subscription(this, opts);
    await s._subscribe(opts.sinceSeq, opts);
    return s;
  }

  /**
   * Resolves with the first decision event for which predicate holds,
   * among those matching filter; rejects with a `timeout` error when none
   * arrives within timeout ms (default: the client's timeout). A firing
   * that happened before waitFor subscribed counts only when sinceSeq
   * reaches back to it: take the journal's last seq before triggering
   * (client.journal.lastSeq()) and pass it.
   */
  async waitFor(predicate: (ev: DecisionEvent) => boolean, opts: WaitOptions & SubscribeOptions = {}): Promise<DecisionEvent> {
    const s = await this.subscribe({ ...opts, timeout: opts.timeout ?? this.#timeout });
    try {
      return await s.waitFor(predicate, { timeout: opts.timeout ?? this.#timeout, signal: opts.signal });
    } finally {
      await s.close().catch(() => {});
    }
  }

  /** The client's default call timeout, in ms. */
  get timeout(): number {
    return this.#timeout;
  }
}

/** Waits for p, but no later than deadline (ms since the epoch) or signal. */
async function withDeadline<T>(p: Promise<T>, deadline: number, op: string, signal?: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new StunfaultError("timeout", `${op}: not reconnected in time`, { op })),
          Math.max(0, deadline - Date.now()),
        );
        onAbort = () => reject(new StunfaultError("aborted", `${op}: aborted`, { op, cause: signal?.reason }));
        signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

/** The result of rules.add and rules.update. */
export interface RuleResult {
  rule: Rule & { id: string };
  /** A rule with that id existed. */
  replaced?: boolean;
}

/** The result of rules.add with several rules: the rules as stored, in the order given, and which ids are new and which replaced a rule. */
export interface AddRulesResult {
  rules: (Rule & { id: string })[];
  added: string[];
  replaced: string[];
}

/** rules.*: the active rules. */
export class RulesAPI {
  readonly #c: Client;
  constructor(c: Client) {
    this.#c = c;
  }

  /** rules.list: every rule with its counters, in evaluation order; with labels, only the rules that have all of them. */
  async list(opts: CallOptions & { labels?: Record<string, string> } = {}): Promise<RuleStatus[]> {
    const params = opts.labels ? { labels: opts.labels } : {};
    return (await this.#c.call<{ rules: RuleStatus[] }>("rules.list", params, opts)).result.rules ?? [];
  }

  /** rules.get: the rule with that id and its counters (`not_found` when there is none). */
  async get(id: string, opts?: CallOptions): Promise<RuleStatus> {
    return (await this.#c.call<RuleStatus>("rules.get", { rule_id: id }, opts)).result;
  }

  /**
   * rules.add: adds the rule, or replaces the one with its id (its counters
   * restart). When the reply is here, the very next message meets it.
   */
  async add(rule: Rule, opts?: CallOptions): Promise<WithRevision<RuleResult>>;
  /**
   * rules.add with several rules: added as one change with one revision,
   * each as a single add would (a known id replaces that rule), all or
   * nothing: if any is invalid (or two share an id) nothing changes and the
   * error's details list every problem (field `rules[i]....`).
   */
  async add(rules: Rule[], opts?: CallOptions): Promise<WithRevision<AddRulesResult>>;
  async add(rule: Rule | Rule[], opts?: CallOptions): Promise<WithRevision<RuleResult> | WithRevision<AddRulesResult>> {
    if (Array.isArray(rule)) return this.#c._mutate<AddRulesResult>("rules.add", { rules: rule }, opts);
    return this.#c._mutate<RuleResult>("rules.add", { rule }, opts);
  }

  /**
   * rules.update: applies a JSON merge patch (RFC 7396) to the rule: objects
   * merge key by key, null deletes a key, anything else replaces. The
   * counters restart; the id cannot change.
   */
  async update(id: string, patch: Record<string, unknown>, opts?: CallOptions): Promise<WithRevision<RuleResult>> {
    return this.#c._mutate<RuleResult>("rules.update", { rule_id: id, patch }, opts);
  }

  /**
   * rules.remove: by id (`not_found` when unknown), or every rule that has
   * all the given labels (none matching is not an error).
   */
  async remove(which: string | { labels: Record<string, string> }, opts?: CallOptions): Promise<WithRevision<{ removed: number }>> {
    const params = typeof which === "string" ? { rule_id: which } : { labels: which.labels };
    return this.#c._mutate<{ removed: number }>("rules.remove", params, opts);
  }

  /** rules.enable: switches the rule on, keeping its counters. */
  async enable(id: string, opts?: CallOptions): Promise<WithRevision<RuleStatus>> {
    return this.#c._mutate<RuleStatus>("rules.enable", { rule_id: id }, opts);
  }

  /** rules.disable: switches the rule off, keeping its counters. */
  async disable(id: string, opts?: CallOptions): Promise<WithRevision<RuleStatus>> {
    return this.#c._mutate<RuleStatus>("rules.disable", { rule_id: id }, opts);
  }

  /**
   * rules.replace: swaps the whole rule set in one revision. When one rule
   * is invalid nothing changes and the error's details list every problem
   * (field `rules[i]....`).
   */
  async replace(rules: Rule[], opts?: CallOptions): Promise<WithRevision<ReplaceResult>> {
    return this.#c._mutate<ReplaceResult>("rules.replace", { rules }, opts);
  }

  /** rules.clear: removes every rule. */
  async clear(opts?: CallOptions): Promise<WithRevision<{ removed: number }>> {
    return this.#c._mutate<{ removed: number }>("rules.clear", {}, opts);
  }

  /**
   * rules.parse: reads rules from text as `stunfault rules add` reads a file
   * (TOML [[rules]] tables, or JSON), on the server, and returns them
   * without adding them. A problem is an `invalid_rule` error with the
   * CLI's message and its `line` (each of several in `details`).
   */
  async parse(text: string, opts?: CallOptions): Promise<Rule[]> {
    return (await this.#c.call<{ rules: Rule[] }>("rules.parse", { text }, opts)).result.rules;
  }
}

/** scenarios.*: the named rule sets of the config ([scenarios.NAME]). */
export class ScenariosAPI {
  readonly #c: Client;
  constructor(c: Client) {
    this.#c = c;
  }

  /** scenarios.list: the scenario names and the active one. */
  async list(opts?: CallOptions): Promise<ScenariosResult> {
    return (await this.#c.call<ScenariosResult>("scenarios.list", {}, opts)).result;
  }

  /**
   * scenarios.load: adds scenarios by name, replacing those of the same
   * names, as one change; all are validated first (an error is
   * `invalid_rule` with a field such as `scenarios.outage.rules[0].action.code`,
   * and nothing is loaded). Loading activates nothing.
   */
  async load(scenarios: Record<string, Scenario>, opts?: CallOptions): Promise<WithRevision<ScenariosLoadResult>> {
    return this.#c._mutate<ScenariosLoadResult>("scenarios.load", { scenarios }, opts);
  }

  /** scenarios.activate: replaces the rules with the scenario's in one revision (`unknown_scenario` when there is none). */
  async activate(name: string, opts?: CallOptions): Promise<WithRevision<ScenariosResult>> {
    return this.#c._mutate<ScenariosResult>("scenarios.activate", { name }, opts);
  }
}

/** The result of journal.query. */
export interface EntriesResult {
  entries: Entry[];
  /** The journal's latest seq, for paging with since_seq. */
  last_seq: number;
}

/** journal.*: the bounded record of rule firings. */
export class JournalAPI {
  readonly #c: Client;
  constructor(c: Client) {
    this.#c = c;
  }

  /** journal.query: the entries query selects, oldest first, and the journal's last seq. */
  async query(query: Query = {}, opts?: CallOptions): Promise<EntriesResult> {
    const { result } = await this.#c.call<EntriesResult>("journal.query", { query }, opts);
    return { entries: result.entries ?? [], last_seq: result.last_seq };
  }

  /** journal.count: how many entries query selects. */
  async count(query: Query = {}, opts?: CallOptions): Promise<number> {
    return (await this.#c.call<{ count: number }>("journal.count", { query }, opts)).result.count;
  }

  /**
   * journal.verify: do exactly expected entries match query? On a mismatch
   * near_misses holds the closest entries with the fields they failed. A
   * mismatch is not an error: check match.
   */
  async verify(query: Query, expected: number, opts?: CallOptions): Promise<VerifyResult> {
    return (await this.#c.call<VerifyResult>("journal.verify", { query, expected }, opts)).result;
  }

  /** journal.clear: drops every entry (seq numbers go on from where they were). */
  async clear(opts?: CallOptions): Promise<WithRevision<{ count: number }>> {
    return this.#c._mutate<{ count: number }>("journal.clear", {}, opts);
  }

  /** The seq of the latest firing (0 before any): pass it as sinceSeq to see only what comes next. */
  async lastSeq(opts?: CallOptions): Promise<number> {
    return (await this.#c.stats(opts)).journal.last_seq;
  }
}

/** machines.*: the state machines of stateful rules (they start in "started"). */
export class MachinesAPI {
  readonly #c: Client;
  constructor(c: Client) {
    this.#c = c;
  }

  /** machines.list: every machine's state. */
  async list(opts?: CallOptions): Promise<Record<string, string>> {
    return (await this.#c.call<{ machines: Record<string, string> }>("machines.list", {}, opts)).result.machines ?? {};
  }

  /** machines.set_state: moves a machine (creating it if no rule named it yet); the result is every machine's state. */
  async setState(machine: string, state: string, opts?: CallOptions): Promise<WithRevision<{ machines: Record<string, string> }>> {
    return this.#c._mutate<{ machines: Record<string, string> }>("machines.set_state", { machine, state }, opts);
  }
}

/** webhook.set: the simulated webhooks (POST /webhook/NAME). */
export class WebhooksAPI {
  readonly #c: Client;
  constructor(c: Client) {
    this.#c = c;
  }

  /** webhook.set: changes a webhook at runtime; absent settings keep their value (`unknown_webhook` for an unknown name). */
  async set(name: string, settings: WebhookSettings, opts?: CallOptions): Promise<WithRevision<WebhookResult>> {
    return this.#c._mutate<WebhookResult>("webhook.set", { ...settings, name }, opts);
  }
}

/** clock.*: the server's clock. */
export class ClockAPI {
  readonly #c: Client;
  constructor(c: Client) {
    this.#c = c;
  }

  /** clock.get: the server's time, and whether it is a manual clock. */
  async get(opts?: CallOptions): Promise<ClockResult> {
    return (await this.#c.call<ClockResult>("clock.get", {}, opts)).result;
  }

  /**
   * clock.advance: moves a manual clock ([server] clock = "manual") on by a
   * Go duration ("30s") and resolves once every timer that became due has
   * run: rules with `for` have expired, held webhook requests are answered,
   * delayed messages sent, a timed scenario is in its new step. A server on
   * the system clock answers `clock_not_manual`.
   */
  async advance(by: Duration, opts?: CallOptions): Promise<WithRevision<ClockResult>> {
    return this.#c._mutate<ClockResult>("clock.advance", { by }, opts);
  }
}

/** allocations.*: the live TURN allocations (pion's). */
export class AllocationsAPI {
  readonly #c: Client;
  constructor(c: Client) {
    this.#c = c;
  }

  /** allocations.list: the live TURN allocations, oldest first, with their permissions and channels. */
  async list(opts?: CallOptions): Promise<Allocation[]> {
    return (await this.#c.call<{ allocations: Allocation[] }>("allocations.list", {}, opts)).result.allocations ?? [];
  }

  /**
   * allocations.expire: ends, now, the allocations of one client
   * (`{client: "ip:port"}` as list shows it), one user (`{username}`) or
   * every one (`{all: true}`), as if their lifetime had run out, and
   * resolves once pion has deleted them, with those it ended. The client's
   * next Refresh gets 437 Allocation Mismatch, its relayed data stops, a new
   * Allocate succeeds. No match is `unknown_allocation`; none or several
   * selectors, or a client that is not an ip:port, `bad_request`.
   */
  async expire(selector: AllocationSelector, opts?: CallOptions): Promise<WithRevision<{ allocations: Allocation[] }>> {
    const r = await this.#c._mutate<{ allocations: Allocation[] }>("allocations.expire", selector, opts);
    return { ...r, allocations: r.allocations ?? [] };
  }

  /**
   * permissions.expire: ends, now, the permission for `peer` (an IP
   * address) of the allocations the selector selects, as if it had timed
   * out: data between the relay and that peer stops both ways (Send, Data,
   * ChannelData), list no longer shows it, and a CreatePermission (or
   * ChannelBind) for the peer that succeeds restores it. Resolves with the
   * permissions it ended. No allocation selected is `unknown_allocation` on
   * the selector; none with that live permission, `unknown_allocation` on
   * `peer`; a peer that is not an IP address, `bad_request`.
   */
  async expirePermission(selector: AllocationSelector, peer: string, opts?: CallOptions): Promise<WithRevision<{ permissions: ExpiredPermission[] }>> {
    const r = await this.#c._mutate<{ permissions: ExpiredPermission[] }>("permissions.expire", { ...selector, peer }, opts);
    return { ...r, permissions: r.permissions ?? [] };
  }

  /**
   * channels.expire: ends, now, the binding of `channel` (0x4000 to
   * 0x7FFF) of the allocations the selector selects, as if it had timed
   * out: the client's ChannelData on it is dropped, the peer's data comes as
   * Data indications while the permission lives, and a ChannelBind of the
   * number to the same peer that succeeds restores it (to another peer:
   * pion's 400). Resolves with the bindings it ended. Errors as
   * expirePermission's, on `channel`.
   */
  async expireChannel(selector: AllocationSelector, channel: number, opts?: CallOptions): Promise<WithRevision<{ channels: ExpiredChannel[] }>> {
    const r = await this.#c._mutate<{ channels: ExpiredChannel[] }>("channels.expire", { ...selector, channel }, opts);
    return { ...r, channels: r.channels ?? [] };
  }
}

/** nonces.rotate: stale nonces on demand. */
export class NoncesAPI {
  readonly #c: Client;
  constructor(c: Client) {
    this.#c = c;
  }

  /**
   * nonces.rotate: every client's next signed request gets 438 Stale Nonce
   * with a fresh NONCE (stunfault answers it in front of pion), and its
   * retry with that nonce succeeds. Resolves with the rotation's number,
   * from 1. Up to 10,000 clients are remembered per rotation (beyond, one
   * may get a second 438).
   */
  async rotate(opts?: CallOptions): Promise<WithRevision<{ rotation: number }>> {
    return this.#c._mutate<{ rotation: number }>("nonces.rotate", {}, opts);
  }
}

/** connections.close: the TCP and TLS connections of TURN clients. */
export class ConnectionsAPI {
  readonly #c: Client;
  constructor(c: Client) {
    this.#c = c;
  }

  /**
   * connections.close: closes the TCP or TLS connection of the client at
   * ip:port (an allocation's `client`); pion then ends its allocation. No
   * such connection is `unknown_allocation`, a client that is not an
   * ip:port `bad_request` (field `client`).
   */
  async close(client: string, opts?: CallOptions): Promise<WithRevision<{ client: string }>> {
    return this.#c._mutate<{ client: string }>("connections.close", { client }, opts);
  }
}

export type { SubscribeResult };
