import type { CallOptions, Client } from "./client.js";
import { StunfaultError } from "./errors.js";
import type { DecisionEvent, Query, SubscribeResult, SubscriptionEvent } from "./types.js";

/** How many events a subscription queues, on the server and again in this client, unless told otherwise. */
export const DEFAULT_EVENT_BUFFER = 1024;

/** Options of subscribe. */
export interface SubscribeOptions extends CallOptions {
  /** Which firings: a journal query without since_seq and limit. Absent: every firing. */
  filter?: Omit<Query, "since_seq" | "limit">;
  /**
   * Replay the journal entries with a greater seq first, then go on live,
   * with no gap and no duplicate: pass the lastSeq of an earlier
   * subscription to resume it.
   */
  sinceSeq?: number;
  /**
   * How many events are queued for this subscription on the server, and
   * again in this client, before further ones are dropped and reported as a
   * lost event (default 1024, at most 4096).
   */
  buffer?: number;
}

/** Options of waitFor. */
export interface WaitOptions {
  /** Give up with a `timeout` error after this many ms (default: the client's timeout). */
  timeout?: number;
  /** Give up with an `aborted` error when it fires. */
  signal?: AbortSignal;
}

interface Waiter {
  resolve: (r: IteratorResult<SubscriptionEvent, undefined>) => void;
  reject: (e: StunfaultError) => void;
}

/**
 * Subscription is one subscribe: an async iterator of the events, in seq
 * order. A lost event says how many were dropped because a buffer (the
 * server's or this client's) was full: the client never stops reading the
 * socket for a slow consumer. Iteration ends after close(), and throws the
 * client's `closed` error when the connection dropped for good.
 */
export class Subscription implements AsyncIterableIterator<SubscriptionEvent, undefined> {
  /** The server's answer to the latest subscribe (a reconnect subscribes again). */
  result: SubscribeResult = { subscription: 0, replayed: 0, last_seq: 0 };
  /** The seq of the last decision or step event received (or where the subscription started): resume from it with sinceSeq. */
  lastSeq = 0;
  /** How many events were lost so far, on the server or in this client. */
  lost = 0;

  readonly #c: Client;
  readonly #filter: SubscribeOptions["filter"];
  readonly #max: number;
  readonly #buffer: number | undefined;
  readonly #queue: SubscriptionEvent[] = [];
  #owed = 0;
  /** next() calls waiting for an event, oldest first. */
  readonly #waiters: Waiter[] = [];
  #ended = false;
  #error: StunfaultError | undefined;
  #routed = false;
  #started = false;

  /** Use client.subscribe. */
  constructor(c: Client, opts: SubscribeOptions) {
    this.#c = c;
    this.#filter = opts.filter;
    this.#buffer = opts.buffer;
    this.#max = opts.buffer && opts.buffer > 0 ? opts.buffer : DEFAULT_EVENT_BUFFER;
  }

  /** @internal Sends subscribe, routing this subscription's events from the reply on. */
  async _subscribe(sinceSeq: number | undefined, opts: CallOptions = {}): Promise<void> {
    const params: Record<string, unknown> = {};
    if (this.#filter) params["filter"] = this.#filter;
    if (sinceSeq !== undefined) params["since_seq"] = sinceSeq;
    if (this.#buffer !== undefined) params["buffer"] = this.#buffer;
    const first = !this.#started;
    await this.#c._call<SubscribeResult>("subscribe", params, opts, (ok, result) => {
      if (!ok || this.#ended) return;
      this.result = result as SubscribeResult;
      // Where a resume starts when no event came: after the journal's seq
      // now (live), or after sinceSeq (a replay is on its way). A
      // resubscribe keeps the seq it resumed from.
      if (first) this.lastSeq = sinceSeq ?? this.result.last_seq;
      this.#started = true;
      this.#routed = true;
      this.#c._route(this.result.subscription, this);
    });
  }

  /** @internal Subscribes again on a new connection, from the last seq received. */
  async _resubscribe(): Promise<void> {
    if (this.#ended) return;
    this.#routed = false;
    await this._subscribe(this.lastSeq);
  }

  /** @internal Queues ev without blocking; the client's message handler calls it. */
  _deliver(ev: SubscriptionEvent): void {
    if (this.#ended) return;
    if (ev.event === "lost") {
      this.lost += ev.count;
      this.#owed += ev.count;
    } else if (ev.event === "decision" || ev.event === "step") {
      this.lastSeq = Math.max(this.lastSeq, ev.seq);
      if (this.#queue.length >= this.#max) {
        this.lost++;
        this.#owed++;
      } else {
        this.#flushOwed();
        this.#queue.push(ev);
      }
    } else {
      return; // a kind this client does not know
    }
    this.#wake();
  }

  /**
   * Puts the losses counted so far in the queue, where they happened. A lost
   * event goes in only before a decision that fits, or into an empty queue,
   * so the queue holds at most twice the buffer.
   */
  #flushOwed(): void {
    if (this.#owed > 0) {
      this.#queue.push({ event: "lost", subscription: this.result.subscription, count: this.#owed });
      this.#owed = 0;
    }
  }

  /** Hands queued events to waiting next() calls, oldest first, and the end to the rest once ended. */
  #wake(): void {
    while (this.#waiters.length > 0) {
      if (this.#queue.length === 0 && this.#owed > 0) this.#flushOwed();
      const ev = this.#queue.shift();
      if (ev) {
        this.#waiters.shift()!.resolve({ value: ev, done: false });
      } else if (this.#ended) {
        this.#settleEnd(this.#waiters.shift()!);
      } else {
        return;
      }
    }
  }

  #settleEnd(w: Waiter): void {
    const err = this.#error;
    this.#error = undefined; // thrown once; then the iterator is done
    if (err) w.reject(err);
    else w.resolve({ value: undefined, done: true });
  }

  /** @internal Ends the subscription: queued events are still yielded, then iteration ends (throwing err when given). */
  _end(err?: StunfaultError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = err;
    this.#routed = false;
    this.#wake();
  }

  /** The next event, waiting for one. */
  next(): Promise<IteratorResult<SubscriptionEvent, undefined>> {
    return this.#take(undefined, undefined);
  }

  #take(deadline: number | undefined, signal: AbortSignal | undefined): Promise<IteratorResult<SubscriptionEvent, undefined>> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        forget();
        reject(new StunfaultError("aborted", "subscription: aborted", { cause: signal?.reason }));
      };
      const forget = () => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const w: Waiter = {
        resolve: (r) => {
          forget();
          resolve(r);
        },
        reject: (e) => {
          forget();
          reject(e);
        },
      };
      if (signal?.aborted) return onAbort();
      this.#waiters.push(w);
      this.#wake();
      if (this.#waiters.indexOf(w) < 0) return; // answered at once
      if (deadline !== undefined) {
        timer = setTimeout(() => {
          forget();
          reject(new StunfaultError("timeout", "subscription: no event in time"));
        }, Math.max(0, deadline - Date.now()));
      }
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Closes the subscription when a for-await loop is left early. */
  async return(): Promise<IteratorResult<SubscriptionEvent, undefined>> {
    await this.close();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Consumes events until one is a decision for which predicate holds, and
   * resolves with it; rejects with a `timeout` error (naming how many events
   * went by) when none comes within timeout ms, and with the client's
   * `closed` error when the subscription ends first.
   */
  async waitFor(predicate: (ev: DecisionEvent) => boolean, opts: WaitOptions = {}): Promise<DecisionEvent> {
    const timeout = opts.timeout ?? this.#c.timeout;
    const deadline = Date.now() + timeout;
    let seen = 0;
    for (;;) {
      let r: IteratorResult<SubscriptionEvent, undefined>;
      try {
        r = await this.#take(deadline, opts.signal);
      } catch (e) {
        if (e instanceof StunfaultError && e.code === "timeout") {
          throw new StunfaultError("timeout", `waitFor: no matching event within ${timeout} ms (${seen} other events)`);
        }
        throw e;
      }
      if (r.done) throw new StunfaultError("closed", `waitFor: the subscription ended (${seen} other events)`);
      if (r.value.event !== "decision") continue;
      if (predicate(r.value)) return r.value;
      seen++;
    }
  }

  /**
   * Ends the subscription on the server and ends iteration, dropping events
   * not yet read; no event follows. Safe to call more than once, and on a
   * closed client.
   */
  async close(opts?: CallOptions): Promise<void> {
    if (this.#ended) return;
    const id = this.result.subscription;
    const routed = this.#routed && this.#c._unroute(id);
    this.#queue.length = 0;
    this.#owed = 0;
    this._end(undefined);
    if (!routed) return;
    try {
      await this.#c.call("unsubscribe", { subscription: id }, opts);
    } catch (e) {
      if (!(e instanceof StunfaultError && e.code === "closed")) throw e;
    }
  }
}
