// Every op of the client against a real stunfault process, each checked on
// what a STUN client then gets on the wire: a rule added through the client
// decides the very next Binding sent from a UDP socket here.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";

import { StunfaultError, isStunfaultError, startStunfault, type Rule, type Stunfault, type DecisionEvent } from "stunfault";

import { binding } from "./stun.js";

const CONFIG = `
[webhooks.crm]
latency = "30s"
mode = "sync"

[scenarios.forbidden]
[[scenarios.forbidden.rules]]
id = "scenario-403"
match = { methods = ["binding"] }
action = { type = "error", code = 403, reason = "Forbidden" }
`;

const r403: Rule = {
  id: "r403",
  labels: { test: "js" },
  match: { methods: ["binding"], classes: ["request"] },
  action: { type: "error", code: 403, reason: "Forbidden" },
};

/** Asserts that p rejects with a StunfaultError with that code (and field, when given). */
async function rejectsWith(p: Promise<unknown>, code: string, field?: string): Promise<StunfaultError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StunfaultError, `got ${String(e)}, want a StunfaultError`);
    assert.equal(e.code, code, `error ${e.toString()}: code`);
    if (field !== undefined) assert.equal(e.field, field, `error ${e.toString()}: field`);
    return e;
  }
  assert.fail(`resolved, want a StunfaultError with code ${code}`);
}

describe("client against a running stunfault", () => {
  let sf: Stunfault;
  before(async () => {
    sf = await startStunfault({ config: CONFIG });
  });
  after(async () => {
    await sf?.stop();
  });
  beforeEach(async () => {
    await sf.client.reset();
    await sf.client.webhooks.set("crm", { mode: "sync", synthetic_pending: 0 });
  });

  it("hello names the protocol, the ops and the seed of the ready line", async () => {
    const h = await sf.client.hello();
    assert.equal(h.protocol, 1);
    assert.equal(h.seed, sf.ready.seed);
    for (const op of ["rules.add", "journal.verify", "subscribe", "webhook.set"]) assert.ok(h.ops.includes(op), `ops lack ${op}`);
  });

  it("has a method for every op the server answers", async () => {
    // The ops this client's methods send. A server op missing here is a
    // client that drifted from the protocol: add a method, then the op.
    const covered = new Set([
      "hello", "rules.list", "rules.get", "rules.add", "rules.update", "rules.remove", "rules.enable",
      "rules.disable", "rules.replace", "rules.clear", "rules.parse", "scenarios.list", "scenarios.activate", "scenarios.load",
      "machines.list", "machines.set_state", "journal.query", "journal.count", "journal.verify", "journal.clear",
      "stats.get", "reset", "webhook.set", "subscribe", "unsubscribe", "clock.get", "clock.advance",
      "allocations.list", "allocations.expire", "permissions.expire", "channels.expire", "nonces.rotate", "connections.close",
    ]);
    const missing = (await sf.client.hello()).ops.filter((op) => !covered.has(op));
    assert.deepEqual(missing, [], `the server answers ops clients/js has no method for: ${missing.join(", ")} (add them to src/client.ts)`);
  });

  it("rules.add decides the very next Binding; adding the same id replaces it", async () => {
    assert.equal((await binding(sf.stunAddress)).code, 0);
    const added = await sf.client.rules.add(r403);
    assert.equal(added.rule.id, "r403");
    assert.ok(!added.replaced);
    assert.ok(added.revision > 0);
    const a = await binding(sf.stunAddress);
    assert.deepEqual([a.code, a.reason], [403, "Forbidden"]);

    const again = await sf.client.rules.add({ ...r403, action: { type: "error", code: 486, reason: "Allocation Quota Reached" } });
    assert.equal(again.replaced, true);
    assert.ok(again.revision > added.revision);
    assert.equal((await binding(sf.stunAddress)).code, 486);
  });

  it("rules.add of several rules is one change, all or nothing", async () => {
    const before = (await sf.client.hello()).revision;
    await sf.client.rules.add({ ...r403, action: { type: "drop" } });
    const res = await sf.client.rules.add([
      r403,
      { match: { methods: ["allocate"] }, action: { type: "delay", delay: "2s" } },
    ]);
    assert.equal(res.revision, before + 2, "one revision for both");
    assert.equal(res.rules.length, 2);
    assert.equal(res.rules[0]?.id, "r403");
    assert.deepEqual(res.replaced, ["r403"]);
    assert.deepEqual(res.added, [res.rules[1]?.id]);
    assert.equal((await binding(sf.stunAddress)).code, 403);

    const bad = await rejectsWith(
      sf.client.rules.add([
        { id: "fine", match: { methods: ["binding"] }, action: { type: "error", code: 500 } },
        { id: "bad", match: { methods: ["bindng" as never] }, action: { type: "drop" } },
      ]),
      "invalid_rule",
      "rules[1].match.methods[0]",
    );
    assert.equal(bad.op, "rules.add");
    await rejectsWith(sf.client.rules.get("fine"), "not_found");
    assert.equal((await binding(sf.stunAddress)).code, 403, "nothing changed");
  });

  it("rules.add without an id gets one generated", async () => {
    const { rule } = await sf.client.rules.add({ match: { methods: ["allocate"] }, action: { type: "drop" } });
    assert.match(rule.id, /\S/);
    assert.equal((await sf.client.rules.get(rule.id)).rule.id, rule.id);
  });

  it("rules.get and rules.list show the counters and filter on labels", async () => {
    await sf.client.rules.add(r403);
    await sf.client.rules.add({ id: "other", labels: { test: "other" }, match: { methods: ["allocate"] }, action: { type: "drop" } });
    await binding(sf.stunAddress);
    const st = await sf.client.rules.get("r403");
    assert.deepEqual([st.matched, st.fired, st.let_through], [1, 1, 0]);
    assert.deepEqual((await sf.client.rules.list()).map((s) => s.rule.id), ["r403", "other"]);
    assert.deepEqual((await sf.client.rules.list({ labels: { test: "other" } })).map((s) => s.rule.id), ["other"]);
  });

  it("rules.update merges a patch: the next Binding gets the new code", async () => {
    await sf.client.rules.add(r403);
    const up = await sf.client.rules.update("r403", { times: 1, action: { code: 500, reason: null } });
    assert.equal(up.rule.action.code, 500);
    assert.equal(up.rule.action.reason, undefined);
    assert.equal(up.rule.times, 1);
    assert.equal((await binding(sf.stunAddress)).code, 500);
    assert.equal((await binding(sf.stunAddress)).code, 0, "times = 1: the second Binding passes");
  });

  it("rules.disable lets Bindings through, rules.enable arms the rule again, keeping counters", async () => {
    await sf.client.rules.add(r403);
    await binding(sf.stunAddress);
    const off = await sf.client.rules.disable("r403");
    assert.equal(off.rule.enabled, false);
    assert.equal(off.fired, 1);
    assert.equal((await binding(sf.stunAddress)).code, 0);
    const on = await sf.client.rules.enable("r403");
    assert.equal(on.fired, 1);
    assert.equal((await binding(sf.stunAddress)).code, 403);
  });

  it("rules.remove by id and by labels", async () => {
    await sf.client.rules.add(r403);
    assert.equal((await sf.client.rules.remove("r403")).removed, 1);
    assert.equal((await binding(sf.stunAddress)).code, 0);
    await sf.client.rules.add(r403);
    assert.equal((await sf.client.rules.remove({ labels: { test: "js" } })).removed, 1);
    assert.equal((await sf.client.rules.remove({ labels: { test: "js" } })).removed, 0, "none left is not an error");
    assert.equal((await binding(sf.stunAddress)).code, 0);
  });

  it("rules.replace swaps the set in one revision and reports the diff", async () => {
    await sf.client.rules.add(r403);
    await sf.client.rules.add({ id: "gone", match: { methods: ["allocate"] }, action: { type: "drop" } });
    const res = await sf.client.rules.replace([
      { ...r403, action: { type: "error", code: 420, reason: "Unknown Attribute" } },
      { id: "new", match: { methods: ["refresh"] }, action: { type: "drop" } },
    ]);
    assert.deepEqual([res.added, res.removed, res.replaced], [["new"], ["gone"], ["r403"]]);
    assert.equal((await binding(sf.stunAddress)).code, 420);
  });

  it("rules.clear removes every rule", async () => {
    await sf.client.rules.add(r403);
    assert.equal((await sf.client.rules.clear()).removed, 1);
    assert.equal((await binding(sf.stunAddress)).code, 0);
  });

  it("scenarios.list and scenarios.activate switch the rule set", async () => {
    const list = await sf.client.scenarios.list();
    assert.deepEqual(list.scenarios, ["forbidden"]);
    const act = await sf.client.scenarios.activate("forbidden");
    assert.equal(act.active, "forbidden");
    assert.equal((await binding(sf.stunAddress)).code, 403);
    await rejectsWith(sf.client.scenarios.activate("nope"), "unknown_scenario");
  });

  it("scenarios.load adds scenarios as one change, all or nothing; activating one decides the next Binding", async () => {
    const res = await sf.client.scenarios.load({
      quota: { description: "486 on Binding", rules: [{ id: "quota-486", match: { methods: ["binding"] }, action: { type: "error", code: 486 } }] },
      forbidden: { rules: [{ id: "scenario-403", match: { methods: ["binding"] }, action: { type: "error", code: 401 } }] },
    });
    assert.deepEqual([res.added, res.replaced], [["quota"], ["forbidden"]]);
    assert.deepEqual(res.scenarios, ["forbidden", "quota"]);
    assert.equal((await binding(sf.stunAddress)).code, 0, "loading activates nothing");
    await sf.client.scenarios.activate("quota");
    assert.equal((await binding(sf.stunAddress)).code, 486);

    await rejectsWith(
      sf.client.scenarios.load({
        fine: { rules: [] },
        broken: { rules: [{ id: "b", match: {}, action: { type: "error", code: 99 } }] },
      }),
      "invalid_rule",
      "scenarios.broken.rules[0].action.code",
    );
    assert.deepEqual((await sf.client.scenarios.list()).scenarios, ["forbidden", "quota"], "nothing loaded");
    // Put back the config's scenario for the other tests.
    await sf.client.scenarios.load({ forbidden: { rules: [{ id: "scenario-403", match: { methods: ["binding"] }, action: { type: "error", code: 403, reason: "Forbidden" } }] } });
  });

  it("machines.setState arms a stateful rule that moves the machine on; machines.list shows it", async () => {
    await sf.client.rules.add({
      id: "once-armed",
      machine: "call",
      requires_state: "ringing",
      sets_state: "answered",
      match: { methods: ["binding"] },
      action: { type: "error", code: 403, reason: "Forbidden" },
    });
    assert.equal((await binding(sf.stunAddress)).code, 0, "machine still in started");
    const set = await sf.client.machines.setState("call", "ringing");
    assert.equal(set.machines["call"], "ringing");
    assert.equal((await binding(sf.stunAddress)).code, 403);
    assert.equal((await binding(sf.stunAddress)).code, 0, "the firing moved the machine to answered");
    assert.equal((await sf.client.machines.list())["call"], "answered");
  });

  it("journal.query, journal.count and journal.verify with near misses", async () => {
    await sf.client.rules.add(r403);
    const a = await binding(sf.stunAddress);
    const { entries, last_seq } = await sf.client.journal.query({ rule: "r403" });
    assert.equal(entries.length, 1);
    const e = entries[0]!;
    assert.deepEqual([e.rule, e.action, e.code, e.method, e.class, e.transport, e.direction, e.src, e.size], [
      "r403", "error", 403, "binding", "request", "udp", "in", a.from, 20,
    ]);
    assert.equal(last_seq, e.seq);
    assert.equal(await sf.client.journal.count({ client: a.from }), 1);
    assert.equal(await sf.client.journal.count({ method: "allocate" }), 0);

    const ok = await sf.client.journal.verify({ rule: "r403" }, 1);
    assert.deepEqual([ok.match, ok.actual], [true, 1]);
    const miss = await sf.client.journal.verify({ rule: "r403", method: "allocate" }, 1);
    assert.deepEqual([miss.match, miss.expected, miss.actual], [false, 1, 0]);
    assert.equal(miss.near_misses?.[0]?.entry.seq, e.seq);
    assert.deepEqual(miss.near_misses?.[0]?.failed, ["method"]);

    assert.equal((await sf.client.journal.clear()).count, 1);
    assert.equal(await sf.client.journal.count(), 0);
    assert.equal(await sf.client.journal.lastSeq(), e.seq, "seq numbers are never reused");
  });

  it("webhooks.set: synthetic pending load arms a webhook rule, and 0 disarms it", async () => {
    await sf.client.rules.add({
      id: "under-load",
      match: { methods: ["binding"], webhook: { name: "crm", min_pending: 3 } },
      action: { type: "error", code: 403, reason: "Forbidden" },
    });
    assert.equal((await binding(sf.stunAddress)).code, 0);
    const set = await sf.client.webhooks.set("crm", { synthetic_pending: 3, latency: "5s" });
    assert.deepEqual([set.name, set.synthetic_pending, set.latency], ["crm", 3, "5s"]);
    assert.equal((await binding(sf.stunAddress)).code, 403);
    assert.equal((await sf.client.stats()).webhooks?.["crm"]?.pending, 3);
    await sf.client.webhooks.set("crm", { synthetic_pending: 0 });
    assert.equal((await binding(sf.stunAddress)).code, 0);
    await rejectsWith(sf.client.webhooks.set("nope", { mode: "async" }), "unknown_webhook");
  });

  it("stats and reset: counters, journal, listeners", async () => {
    await sf.client.rules.add(r403);
    await binding(sf.stunAddress);
    const st = await sf.client.stats();
    assert.deepEqual(st.rules.map((r) => [r.id, r.matched, r.fired]), [["r403", 1, 1]]);
    assert.ok(st.journal.len >= 1);
    assert.ok(st.listeners?.some((l) => l.transport === "udp" && l.address === sf.stunAddress));
    const rs = await sf.client.reset(["counters"]);
    assert.deepEqual(rs.reset, ["counters"]);
    assert.equal((await sf.client.rules.get("r403")).matched, 0);
    assert.equal((await binding(sf.stunAddress)).code, 403, "reset of counters keeps the rule");
    await sf.client.reset();
    assert.equal((await binding(sf.stunAddress)).code, 0, "reset of everything removes it");
  });

  it("errors carry the protocol's code, message and field", async () => {
    const bad = await rejectsWith(
      sf.client.rules.add({ id: "bad", match: { methods: ["bindng" as never] }, action: { type: "error", code: 403 } }),
      "invalid_rule",
      "match.methods[0]",
    );
    assert.match(bad.message, /bindng/);
    assert.equal(bad.op, "rules.add");
    await rejectsWith(sf.client.rules.get("nope"), "not_found", "rule_id");
    await rejectsWith(sf.client.call("no.such.op"), "unknown_op");
    await rejectsWith(sf.client.call("rules.get", { rule_Id: "x" }), "bad_request");
    await rejectsWith(sf.client.journal.count({ method: "bindng" as never }), "bad_request", "query.method");

    // All or nothing, with every problem listed.
    await sf.client.rules.add(r403);
    const many = await rejectsWith(
      sf.client.rules.replace([
        { id: "ok", match: { methods: ["binding"] }, action: { type: "drop" } },
        { id: "bad1", match: {}, action: { type: "error", code: 99 } },
        { id: "bad2", match: { classes: ["nope" as never] }, action: { type: "drop" } },
      ]),
      "invalid_rule",
    );
    assert.match(many.field ?? "", /^rules\[1\]\./);
    assert.ok(many.details.length >= 2, `details ${JSON.stringify(many.details)}: want both bad rules`);
    assert.ok(many.details.some((d) => d.field?.startsWith("rules[2].")));
    assert.equal((await binding(sf.stunAddress)).code, 403, "nothing changed");
    assert.ok(isStunfaultError(many, "invalid_rule"));
  });

  it("subscribe streams decisions; since_seq resumes after the last one seen, with no gap and no duplicate", async () => {
    await sf.client.rules.add(r403);
    const sub = await sf.client.subscribe({ filter: { rule: "r403" } });
    const a = await binding(sf.stunAddress);
    const first = await sub.next();
    assert.ok(!first.done && first.value.event === "decision");
    const ev = first.value as DecisionEvent;
    assert.deepEqual([ev.rule, ev.code, ev.method, ev.src, ev.subscription], ["r403", 403, "binding", a.from, sub.result.subscription]);
    assert.equal(sub.lastSeq, ev.seq);
    await sub.close();
    assert.deepEqual(await sub.next(), { value: undefined, done: true }, "a closed subscription ends");

    // Missed while no one listened: two more firings, and one of another rule.
    const b = await binding(sf.stunAddress);
    const c = await binding(sf.stunAddress);
    await sf.client.rules.add({ id: "other", priority: -1, times: 1, match: { methods: ["binding"] }, action: { type: "error", code: 500 } });
    await binding(sf.stunAddress);

    const resumed = await sf.client.subscribe({ filter: { rule: "r403" }, sinceSeq: sub.lastSeq });
    assert.equal(resumed.result.replayed, 2);
    const d = await binding(sf.stunAddress); // live, after the replay
    const got: string[] = [];
    for await (const e of resumed) {
      assert.equal(e.event, "decision");
      got.push((e as DecisionEvent).src);
      if (got.length === 3) break; // leaving the loop closes the subscription
    }
    assert.deepEqual(got, [b.from, c.from, d.from]);
  });

  it("a consumer that falls behind loses events beyond the buffer, and is told how many, where they were lost", async () => {
    const sub = await sf.client.subscribe({ filter: { rule: "none-such" }, buffer: 2 });
    // Feed the client's queue directly (what its socket reader does), so the
    // count of what overflows does not depend on timing.
    const deliver = (sub as unknown as { _deliver(ev: unknown): void })._deliver.bind(sub);
    const base = sub.lastSeq; // the journal's latest seq when it subscribed
    const ev = (n: number) => ({ event: "decision", subscription: sub.result.subscription, seq: base + n, rule: "x" });
    for (let seq = 1; seq <= 5; seq++) deliver(ev(seq));
    deliver({ event: "lost", subscription: sub.result.subscription, count: 4 }); // the server's own losses
    deliver(ev(10)); // still full: lost too
    const got: string[] = [];
    const take = async () => {
      const e = (await sub.next()).value!;
      got.push(e.event === "lost" ? `lost ${e.count}` : `seq ${e.seq - base}`);
    };
    for (let i = 0; i < 3; i++) await take();
    deliver(ev(11));
    await take();
    assert.deepEqual(got, ["seq 1", "seq 2", "lost 8", "seq 11"]);
    assert.equal(sub.lost, 8);
    assert.equal(sub.lastSeq, base + 11);
    await sub.close();
  });

  it("next() calls made before events arrive get them in order", async () => {
    await sf.client.rules.add(r403);
    const sub = await sf.client.subscribe({ filter: { rule: "r403" } });
    const [p1, p2] = [sub.next(), sub.next()];
    const a = await binding(sf.stunAddress);
    const b = await binding(sf.stunAddress);
    const got = [(await p1).value, (await p2).value].map((e) => (e as DecisionEvent).src);
    assert.deepEqual(got, [a.from, b.from]);
    const p3 = sub.next();
    await sub.close();
    assert.deepEqual(await p3, { value: undefined, done: true }, "close ends a waiting next()");
  });

  it("waitFor resolves with the first matching event, from sinceSeq on, and times out with a typed error", async () => {
    await sf.client.rules.add(r403);
    const since = await sf.client.journal.lastSeq();
    const noise = await binding(sf.stunAddress);
    const target = await binding(sf.stunAddress);
    const ev = await sf.client.waitFor((e) => e.src === target.from, { sinceSeq: since, filter: { rule: "r403" }, timeout: 5000 });
    assert.equal(ev.code, 403);
    assert.notEqual(ev.src, noise.from);

    const sub = await sf.client.subscribe({ filter: { rule: "r403" } });
    const live = sub.waitFor((e) => e.code === 403, { timeout: 5000 });
    const x = await binding(sf.stunAddress);
    assert.equal((await live).src, x.from);
    await sub.close();

    const err = await rejectsWith(sf.client.waitFor((e) => e.code === 999, { timeout: 200 }), "timeout");
    assert.match(err.message, /200 ms/);
  });

  it("a call gives up with timeout or aborted, and the connection stays usable", async () => {
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(sf.client.hello({ signal: ac.signal }), "aborted");
    assert.equal((await sf.client.hello()).protocol, 1);
  });
});
