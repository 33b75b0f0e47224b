// The allocation ops against a real stunfault process, each checked on what
// a TURN client built by hand here (test/turn.ts) then gets: its allocation
// listed, its Refresh answered 437 once expired, a 438 after nonces.rotate,
// its TCP connection closed.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { StunfaultError, startStunfault, type Stunfault } from "stunfault";

import { TurnClient } from "./turn.js";

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

/** Resolves with p, or rejects after ms. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe("allocation ops against a running stunfault", () => {
  let sf: Stunfault;
  let tcpAddress: string;
  const clients: TurnClient[] = [];
  const turn = async (how: "udp" | "tcp") => {
    const c = how === "udp" ? await TurnClient.udp(sf.stunAddress) : await TurnClient.tcp(tcpAddress);
    clients.push(c);
    return c;
  };
  before(async () => {
    sf = await startStunfault();
    tcpAddress = sf.ready.listeners.find((l) => l.transport === "tcp")?.address ?? "";
    assert.match(tcpAddress, /^127\.0\.0\.1:\d+$/, "the default config has a TCP listener");
  });
  after(async () => {
    for (const c of clients) c.close();
    await sf?.stop();
  });

  it("allocations.list shows a real Allocate: client, server, transport, username, relay, lifetime", async () => {
    const c = await turn("udp");
    const relay = await c.allocate();
    const a = (await sf.client.allocations.list()).find((x) => x.client === c.local);
    assert.ok(a, `no allocation for ${c.local}`);
    assert.deepEqual([a.server, a.transport, a.username, a.relay], [sf.stunAddress, "udp", "user", relay]);
    assert.ok(!Number.isNaN(Date.parse(a.created)), `created ${a.created}: want RFC 3339`);
    assert.match(a.lifetime_left, /^\d+m\d+(\.\d+)?s$|^\d+(\.\d+)?s$/);
    assert.deepEqual([a.permissions, a.channels], [[], []]);
    assert.ok(((await sf.client.stats()).allocations ?? 0) >= 1);
  });

  it("allocations.list shows an allocation's permissions and channels", async () => {
    const c = await turn("udp");
    await c.allocate();
    assert.equal((await c.createPermission("127.0.0.2:40000")).code, 0);
    assert.equal((await c.channelBind(0x4001, "127.0.0.3:40001")).code, 0);
    const a = (await sf.client.allocations.list()).find((x) => x.client === c.local);
    assert.ok(a, `no allocation for ${c.local}`);
    assert.deepEqual(a.permissions.map((p) => p.peer).sort(), ["127.0.0.2", "127.0.0.3"], "ChannelBind installs a permission too");
    for (const p of a.permissions) assert.match(p.lifetime_left, /^\d+m\d+(\.\d+)?s$|^\d+(\.\d+)?s$/);
    assert.deepEqual(a.channels, [{ number: 0x4001, peer: "127.0.0.3:40001" }]);
  });

  it("allocations.expire ends one client's allocation now: its Refresh gets 437, a new Allocate succeeds", async () => {
    const c = await turn("udp");
    const other = await turn("udp");
    await c.allocate();
    await other.allocate();
    const before = (await sf.client.hello()).revision;
    const res = await sf.client.allocations.expire({ client: c.local });
    assert.deepEqual(res.allocations.map((a) => a.client), [c.local]);
    assert.ok(res.revision >= before);
    const left = (await sf.client.allocations.list()).map((a) => a.client);
    assert.ok(!left.includes(c.local), "expired, yet listed");
    assert.ok(left.includes(other.local), "another client's allocation is kept");

    const r = await c.refresh();
    assert.deepEqual([r.code, r.reason], [437, "Allocation Mismatch"]);
    assert.equal((await other.refresh()).code, 0, "the other client's Refresh passes");
    await c.allocate();
    assert.ok((await sf.client.allocations.list()).some((a) => a.client === c.local), "allocated again");
  });

  it("allocations.expire by username and all; its errors", async () => {
    const c = await turn("udp");
    await c.allocate();
    const byUser = await sf.client.allocations.expire({ username: "user" });
    assert.ok(byUser.allocations.some((a) => a.client === c.local));
    assert.ok(byUser.allocations.every((a) => a.username === "user"));
    assert.deepEqual(await sf.client.allocations.list(), []);
    assert.equal((await c.refresh()).code, 437);

    await rejectsWith(sf.client.allocations.expire({ all: true }), "unknown_allocation");
    await rejectsWith(sf.client.allocations.expire({ username: "nobody" }), "unknown_allocation", "username");
    await rejectsWith(sf.client.allocations.expire({ client: "127.0.0.1:1" }), "unknown_allocation");
    await rejectsWith(sf.client.allocations.expire({ client: "nowhere" }), "bad_request", "client");
    await rejectsWith(sf.client.allocations.expire({} as never), "bad_request");
    await rejectsWith(sf.client.allocations.expire({ username: "user", all: true } as never), "bad_request");

    await c.allocate();
    const all = await sf.client.allocations.expire({ all: true });
    assert.deepEqual(all.allocations.map((a) => a.client), [c.local]);
  });

  it("permissions.expire and channels.expire: gone from the list until CreatePermission or ChannelBind restores them; their errors", async () => {
    const c = await turn("udp");
    await c.allocate();
    assert.equal((await c.createPermission("127.0.0.2:40000")).code, 0);
    assert.equal((await c.channelBind(0x4001, "127.0.0.3:40001")).code, 0);
    const listed = async () => (await sf.client.allocations.list()).find((x) => x.client === c.local);

    const p = await sf.client.allocations.expirePermission({ client: c.local }, "127.0.0.2");
    assert.deepEqual(p.permissions.map((x) => [x.client, x.peer]), [[c.local, "127.0.0.2"]]);
    assert.deepEqual((await listed())?.permissions.map((x) => x.peer), ["127.0.0.3"]);
    await rejectsWith(sf.client.allocations.expirePermission({ client: c.local }, "127.0.0.2"), "unknown_allocation", "peer");
    assert.equal((await c.createPermission("127.0.0.2:40000")).code, 0);
    assert.deepEqual((await listed())?.permissions.map((x) => x.peer).sort(), ["127.0.0.2", "127.0.0.3"], "restored by CreatePermission");

    const ch = await sf.client.allocations.expireChannel({ client: c.local }, 0x4001);
    assert.deepEqual(ch.channels.map((x) => [x.number, x.peer]), [[0x4001, "127.0.0.3:40001"]]);
    assert.deepEqual((await listed())?.channels, []);
    assert.equal((await c.channelBind(0x4001, "127.0.0.2:40000")).code, 400, "pion still has the number bound to the first peer");
    assert.equal((await c.channelBind(0x4001, "127.0.0.3:40001")).code, 0);
    assert.deepEqual((await listed())?.channels, [{ number: 0x4001, peer: "127.0.0.3:40001" }], "restored by ChannelBind");

    await rejectsWith(sf.client.allocations.expirePermission({ client: c.local }, "localhost"), "bad_request", "peer");
    await rejectsWith(sf.client.allocations.expireChannel({ client: c.local }, 5), "bad_request", "channel");
    await rejectsWith(sf.client.allocations.expireChannel({ client: c.local }, 0x4002), "unknown_allocation", "channel");
    await rejectsWith(sf.client.allocations.expireChannel({ username: "nobody" }, 0x4001), "unknown_allocation", "username");
  });

  it("nonces.rotate: each client's next signed request gets 438 with a fresh nonce, its retry passes", async () => {
    const a = await turn("udp");
    const b = await turn("tcp");
    await a.allocate();
    await b.allocate();
    const first = await sf.client.nonces.rotate();
    assert.ok(first.rotation >= 1);
    assert.ok(first.revision > 0);
    for (const c of [a, b]) {
      const stale = await c.refresh();
      assert.deepEqual([stale.code, stale.reason], [438, "Stale Nonce"], `${c.local}: first Refresh after the rotation`);
      // pion's nonces are minted per minute: the fresh one may read as the old.
      assert.ok(stale.attrs.get(0x0015)?.length, "the 438 carries a NONCE");
      assert.equal((await c.refresh()).code, 0, `${c.local}: the retry with the fresh nonce`);
      assert.equal((await c.refresh()).code, 0, `${c.local}: once only`);
    }
    const second = await sf.client.nonces.rotate();
    assert.equal(second.rotation, first.rotation + 1);
    assert.equal((await a.refresh()).code, 438, "each rotation once more");
  });

  it("connections.close closes a TCP client's connection; its errors", async () => {
    const c = await turn("tcp");
    await c.allocate();
    const a = (await sf.client.allocations.list()).find((x) => x.client === c.local);
    assert.equal(a?.transport, "tcp");
    assert.equal(a?.server, tcpAddress);
    const res = await sf.client.connections.close(c.local);
    assert.equal(res.client, c.local);
    await within(c.closed, 5000, `the connection of ${c.local} closing`);

    await rejectsWith(sf.client.connections.close(c.local), "unknown_allocation");
    await rejectsWith(sf.client.connections.close("nowhere"), "bad_request", "client");
    const u = await turn("udp");
    await u.allocate();
    await rejectsWith(sf.client.connections.close(u.local), "unknown_allocation", undefined);
  });
});
