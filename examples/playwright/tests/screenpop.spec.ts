// The screen-pop story in Chromium: a softphone's ICE gathering fails with
// 403 Forbidden from the STUN server only while the contact flow's CRM
// webhook, carrying a ticket ID, is held open; making the webhook
// asynchronous fixes it. examples/screenpop/screenpop.toml has one scenario
// per hypothesis; stunfault serves its simulated webhook at
// POST /webhook/servicenow.
import { fileURLToPath } from "node:url";

import { test, expect, only } from "./fixtures";
import type { Stunfault } from "stunfault";

const screenpopConfig = fileURLToPath(new URL("../../screenpop/screenpop.toml", import.meta.url));

/** The screen-pop call with the custom attributes that break the softphone. */
const ticketPayload = JSON.stringify({
  short_description: "Inbound call from +15551230001",
  caller_id: "+15551230001",
  queue: "Support",
  custom_attributes: { ticket_id: "INC0012345", u_category: "billing" },
});

/** NAT is where the screen-pop config's nat rule says a Binding came from. */
const NAT = "203.0.113.7";

/**
 * Makes the contact flow's call to the CRM webhook. The webhook holds a
 * sync call for 30 s (screenpop.toml): the call is aborted when the test
 * ends with it (cancel). Resolves once stunfault counts it, held open (sync)
 * or answered with its work pending (async).
 */
async function screenPop(sf: Stunfault, body: string) {
  const ac = new AbortController();
  const response = fetch(`${sf.httpUrl}/webhook/servicenow`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body,
    signal: ac.signal,
  }).catch((e: unknown) => {
    if (ac.signal.aborted) return undefined; // the flow gave up on it
    throw e;
  });
  // stunfault's stats say when the webhook has the call.
  await expect.poll(async () => (await sf.client.stats()).webhooks?.["servicenow"]?.pending ?? 0, { intervals: [5, 10, 25, 50] }).toBeGreaterThan(0);
  return { response, cancel: () => ac.abort() };
}

test.describe("the screen-pop 403 on Binding", () => {
  test.use({ stunfaultOptions: { configFile: screenpopConfig } });

  test("no rule and no webhook call: the softphone gathers a relay candidate", async ({ stunfault, softphone }) => {
    expect(stunfault.ready.rules).toBe(0);
    await softphone.startCall();
    await expect(softphone.candidates("relay").first()).toBeVisible();
    await expect(softphone.candidates("relay").first()).toHaveAttribute("data-address", "127.0.0.1");
    await expect(softphone.gathering()).toHaveText("complete");
    await expect(softphone.errors()).toHaveCount(0);
  });

  test("payload scenario, ticket webhook held open: icecandidateerror 3 Forbidden on the stun: URL", async ({ stunfault, softphone }) => {
    const sf = stunfault;
    await sf.client.scenarios.activate("payload");
    const stunURL = `stun:${sf.stunAddress}`;
    await softphone.configure(only(sf.iceServers, "stun:"));

    // Without the ticket call the Binding works: a srflx candidate from the NAT rule.
    await softphone.startCall();
    await expect(softphone.candidates("srflx", { address: NAT }).first()).toBeVisible();
    await expect(softphone.gathering()).toHaveText("complete");
    await expect(softphone.errors()).toHaveCount(0);

    // The flow opens the ticket: while the webhook holds the call, 403.
    const since = await sf.client.journal.lastSeq();
    const call = await screenPop(sf, ticketPayload);
    try {
      await softphone.startCall();
      const forbidden = softphone.errors({ url: stunURL, code: 3 }).first();
      await expect(forbidden).toBeVisible();
      await expect(forbidden).toContainText("Forbidden");
      await expect(softphone.candidates("srflx")).toHaveCount(0);
      const fired = await sf.client.waitFor((e) => e.rule === "payload-403", { sinceSeq: since, timeout: 5000 });
      expect([fired.action, fired.code, fired.method]).toEqual(["error", 403, "binding"]);
    } finally {
      call.cancel();
    }
  });

  test("the fix: the webhook switched to async, the same ticket call, no error", async ({ stunfault, softphone }) => {
    const sf = stunfault;
    // blocking-403 fires while a ticket call is held open (min_inflight = 1);
    // payload-403 also counts async work still pending, so the fix is
    // shown on the blocking scenario, as in examples/screenpop.
    await sf.client.scenarios.activate("blocking");
    const stunURL = `stun:${sf.stunAddress}`;
    await softphone.configure(only(sf.iceServers, "stun:"));

    const sync = await screenPop(sf, ticketPayload);
    try {
      await softphone.startCall();
      await expect(softphone.errors({ url: stunURL, code: 3 }).first()).toBeVisible();
    } finally {
      sync.cancel();
    }
    await expect.poll(async () => (await sf.client.stats()).webhooks?.["servicenow"]?.inflight ?? 0, { intervals: [5, 10, 25, 50] }).toBe(0);

    await sf.client.webhooks.set("servicenow", { mode: "async" });
    const since = await sf.client.journal.lastSeq();
    const async = await screenPop(sf, ticketPayload);
    try {
      expect((await async.response)?.status).toBe(202); // answered at once, the work pending
      await softphone.startCall();
      await expect(softphone.candidates("srflx", { address: NAT }).first()).toBeVisible();
      await expect(softphone.gathering()).toHaveText("complete");
      await expect(softphone.errors()).toHaveCount(0);
      expect(await sf.client.journal.count({ rule: "blocking-403", since_seq: since })).toBe(0);
    } finally {
      async.cancel();
    }
  });
});

test.describe("the variant with the full code", () => {
  test("a 403 on the authenticated TURN Allocate: icecandidateerror 403 on the turn: URL", async ({ stunfault, softphone }) => {
    const sf = stunfault;
    // Chromium ignores an error to the first, unauthenticated Allocate
    // (except 401 and 300): the rule answers the one after the 401 challenge.
    await sf.client.rules.add({
      id: "allocate-403",
      match: { methods: ["allocate"], authenticated: true },
      action: { type: "error", code: 403, reason: "Forbidden" },
    });
    const turnUDP = sf.iceServers.flatMap((s) => s.urls).find((u) => u.startsWith("turn:") && u.endsWith("?transport=udp"))!;
    await softphone.configure(only(sf.iceServers, "turn:", "?transport=udp"));

    await softphone.startCall();
    const refused = softphone.errors({ url: turnUDP, code: 403 }).first();
    await expect(refused).toBeVisible();
    await expect(refused).toContainText("TURN allocate error.");
    await expect(softphone.gathering()).toHaveText("complete");
    await expect(softphone.candidates("relay")).toHaveCount(0);
    expect(await sf.client.journal.count({ rule: "allocate-403" })).toBeGreaterThan(0);
  });
});
