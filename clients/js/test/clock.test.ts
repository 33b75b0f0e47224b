// A manual clock: a test moves stunfault's time with clock.advance instead
// of waiting, and a timed scenario's steps arrive as step events.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { StunfaultError, startStunfault, type Stunfault, type StepEvent } from "stunfault";

import { binding } from "./stun.js";

const CONFIG = `
[server]
clock = "manual"

[scenarios.outage]
[[scenarios.outage.steps]]
at = "0s"
[[scenarios.outage.steps]]
at = "5s"
[[scenarios.outage.steps.rules]]
id = "outage-403"
match = { methods = ["binding"] }
action = { type = "error", code = 403, reason = "Forbidden" }
[[scenarios.outage.steps]]
at = "15s"
`;

describe("a manual clock", () => {
  let sf: Stunfault;
  before(async () => {
    sf = await startStunfault({ config: CONFIG });
  });
  after(async () => {
    await sf?.stop();
  });

  it("clock.advance expires a rule with for, without waiting", async () => {
    const before = await sf.client.clock.get();
    assert.equal(before.manual, true);
    await sf.client.rules.add({ id: "brief", for: "30s", match: { methods: ["binding"] }, action: { type: "error", code: 403 } });
    assert.equal((await binding(sf.stunAddress)).code, 403);
    const moved = await sf.client.clock.advance("31s");
    assert.equal(Date.parse(moved.now) - Date.parse(before.now), 31_000);
    assert.equal((await binding(sf.stunAddress)).code, 0, "expired 30 s after it was added");
    assert.equal((await sf.client.rules.get("brief")).expired, true);
    await sf.client.rules.clear();
  });

  it("a timed scenario's steps come as step events, and decide Bindings in turn", async () => {
    const sub = await sf.client.subscribe({ filter: {} });
    const act = await sf.client.scenarios.activate("outage");
    assert.deepEqual([act.step?.index, act.step?.steps, act.step?.next_in], [0, 3, "5s"]);
    const step = async () => {
      for (;;) {
        const { value } = await sub.next();
        if (value?.event === "step") return value as StepEvent;
      }
    };
    assert.equal((await step()).step.index, 0);
    assert.equal((await binding(sf.stunAddress)).code, 0, "step 0 has no rules");

    await sf.client.clock.advance("5s");
    const s1 = await step();
    assert.deepEqual([s1.action, s1.step.scenario, s1.step.index], ["step", "outage", 1]);
    assert.equal((await binding(sf.stunAddress)).code, 403, "step 1: 403 on Binding");

    await sf.client.clock.advance("10s");
    assert.equal((await step()).step.index, 2);
    assert.equal((await binding(sf.stunAddress)).code, 0, "step 2: recovered");
    await sub.close();
  });

  it("bad durations are bad_request on by", async () => {
    for (const by of ["-1s", "soon"]) {
      await assert.rejects(sf.client.clock.advance(by), (e: unknown) => e instanceof StunfaultError && e.code === "bad_request" && e.field === "by");
    }
  });
});

describe("the system clock", () => {
  it("clock.advance is clock_not_manual", async () => {
    const sf = await startStunfault();
    try {
      assert.equal((await sf.client.clock.get()).manual, false);
      await assert.rejects(sf.client.clock.advance("1s"), (e: unknown) => e instanceof StunfaultError && e.code === "clock_not_manual");
    } finally {
      await sf.stop();
    }
  });
});
