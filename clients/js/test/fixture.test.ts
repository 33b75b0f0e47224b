// startStunfault runs a real stunfault process and leaves none behind; the
// client reconnects only when asked.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

import { StunfaultError, connect, startStunfault, type DecisionEvent } from "stunfault";

import { binding } from "./stun.js";

const screenpop = fileURLToPath(new URL("../../../../examples/screenpop/screenpop.toml", import.meta.url));

/** Reports whether a process with that pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, "ESRCH");
    return false;
  }
}

describe("startStunfault", () => {
  it("serves on free ports, and stop() ends the process and waits for it", async () => {
    const sf = await startStunfault();
    assert.ok(alive(sf.pid));
    assert.match(sf.stunAddress, /^127\.0\.0\.1:\d+$/);
    assert.notEqual(sf.stunAddress, "127.0.0.1:3478", "moved off the default port");
    assert.deepEqual(sf.iceServers[0]?.urls, [`stun:${sf.stunAddress}`]);
    assert.equal(sf.iceServers[1]?.username, "user");
    assert.equal(sf.iceServers[1]?.credential, "pass");
    assert.equal(sf.controlUrl, sf.httpUrl.replace("http://", "ws://") + "/control");
    const health = await fetch(sf.httpUrl + "/healthz");
    assert.equal(health.status, 200);
    await health.text();
    assert.equal((await binding(sf.stunAddress)).code, 0);

    await sf.stop();
    assert.ok(!alive(sf.pid), `stunfault pid ${sf.pid} still runs after stop()`);
    await sf.stop(); // a second stop is a no-op
    await assert.rejects(sf.client.hello(), (e: unknown) => e instanceof StunfaultError && e.code === "closed");
    await assert.rejects(binding(sf.stunAddress, 300), /no answer/);
  });

  it("leaves no stunfault behind when the process that started it is killed", async () => {
    // A child node process starts stunfault, prints its pid, and is then
    // killed with SIGKILL: no exit hook runs, stunfault's stdin closes.
    const fixture = new URL("../../dist/index.js", import.meta.url).href;
    const script = `import { startStunfault } from ${JSON.stringify(fixture)};
      const sf = await startStunfault();
      process.stdout.write(sf.pid + "\\n");
      setInterval(() => {}, 1 << 30);`;
    const parent = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const pid = await new Promise<number>((resolve, reject) => {
      let out = "";
      parent.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
        if (out.includes("\n")) resolve(Number(out.trim()));
      });
      parent.once("exit", (code) => reject(new Error(`the parent exited (${code}) before stunfault was ready`)));
    });
    assert.ok(alive(pid));
    const parentGone = new Promise((resolve) => parent.once("exit", resolve));
    parent.kill("SIGKILL");
    await parentGone;
    // stunfault exits once it reads end of file on stdin. It is not this
    // process's child, and Node cannot wait for any other process: look at
    // the process table every 20 ms, for at most 10 s.
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(!alive(pid), `stunfault pid ${pid} outlived the killed parent`);
  });

  it("runs a config file with a scenario active: the screen-pop config's NAT rule answers the first Binding", async () => {
    const sf = await startStunfault({ configFile: screenpop, scenario: "payload" });
    try {
      assert.equal(sf.ready.scenario, "payload");
      assert.equal(sf.ready.rules, 2);
      const a = await binding(sf.stunAddress);
      assert.deepEqual([a.code, a.mapped], [0, "203.0.113.7:40000"]);
      assert.deepEqual((await sf.client.scenarios.list()).active, "payload");
    } finally {
      await sf.stop();
    }
  });

  it("rejects a bad config with stunfault's message, line included", async () => {
    await assert.rejects(
      startStunfault({ config: "[server]\nrealm = 7\n" }),
      (e: unknown) => e instanceof StunfaultError && e.code === "process" && /status 2/.test(e.message) && /:2/.test(e.message),
    );
    await assert.rejects(
      startStunfault({ config: "", scenario: "nope" }),
      (e: unknown) => e instanceof StunfaultError && e.code === "process" && /nope/.test(e.message),
    );
    await assert.rejects(
      startStunfault({ binary: "/nonexistent/stunfault" }),
      (e: unknown) => e instanceof StunfaultError && e.code === "process",
    );
  });

  it("passes the token; a client without it is refused with unauthorized", async () => {
    const sf = await startStunfault({ config: '[http]\naddress = "127.0.0.1:8478"\ntoken = "s3cret"\n', token: "s3cret" });
    try {
      assert.equal(sf.ready.token_required, true);
      assert.equal((await sf.client.hello()).protocol, 1);
      await assert.rejects(connect(sf.controlUrl), (e: unknown) => e instanceof StunfaultError && e.code === "unauthorized");
      const c = await connect(sf.controlUrl, { token: "s3cret" });
      await c.close();
    } finally {
      await sf.stop();
    }
  });
});

describe("connection loss", () => {
  // The server closes a connection that sends a message over 1 MiB (close
  // code 1009): a way to drop it from the client's side while the server
  // keeps running.
  const tooBig = { pad: "x".repeat((1 << 20) + 1) };

  it("without reconnect: calls and subscriptions end with closed", async () => {
    const sf = await startStunfault();
    try {
      const sub = await sf.client.subscribe();
      await assert.rejects(sf.client.call("hello", tooBig), (e: unknown) => e instanceof StunfaultError && e.code === "closed");
      await sf.client.done;
      assert.equal(sf.client.error?.code, "closed");
      await assert.rejects(sf.client.hello(), (e: unknown) => e instanceof StunfaultError && e.code === "closed");
      await assert.rejects(sub.next(), (e: unknown) => e instanceof StunfaultError && e.code === "closed");
      assert.equal(sf.client.reconnects, 0);
    } finally {
      await sf.stop();
    }
  });

  it("with reconnect: later calls work and a subscription resumes after its last seq", async () => {
    const sf = await startStunfault();
    const c = await connect(sf.controlUrl, { reconnect: { minDelay: 10 } });
    try {
      await c.rules.add({ id: "r403", match: { methods: ["binding"] }, action: { type: "error", code: 403 } });
      const sub = await c.subscribe({ filter: { rule: "r403" } });
      const a = await binding(sf.stunAddress);
      assert.equal(((await sub.next()).value as DecisionEvent).src, a.from);

      await assert.rejects(c.call("hello", tooBig), (e: unknown) => e instanceof StunfaultError && e.code === "closed");
      // Fired while the client is down: the resubscription replays it.
      const b = await binding(sf.stunAddress);
      assert.equal(b.code, 403);
      assert.equal((await c.hello()).protocol, 1, "a call after the drop waits for the new connection");
      assert.equal(c.reconnects, 1);
      const d = await binding(sf.stunAddress);
      const got = [(await sub.next()).value, (await sub.next()).value].map((e) => (e as DecisionEvent).src);
      assert.deepEqual(got, [b.from, d.from]);
      await sub.close();
    } finally {
      await c.close();
      await sf.stop();
    }
  });

  it("with reconnect, a server that is gone for good ends the client after the attempts", async () => {
    const sf = await startStunfault();
    const c = await connect(sf.controlUrl, { reconnect: { attempts: 2, minDelay: 10 } });
    const sub = await c.subscribe();
    await sf.stop();
    await c.done;
    assert.equal(c.error?.code, "closed");
    assert.match(c.error?.message ?? "", /reconnecting failed after 2 attempts/);
    await assert.rejects(sub.next(), (e: unknown) => e instanceof StunfaultError && e.code === "closed");
    await c.close();
  });
});
