import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, accessSync, constants } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { connect, type Client } from "./client.js";
import { StunfaultError } from "./errors.js";
import type { IceServer, Listener } from "./types.js";

/** Options of startStunfault. */
export interface StartOptions {
  /** A stunfault config as TOML text (written to a temporary file). Absent: the embedded default. */
  config?: string;
  /** A stunfault config file. Give config or configFile, not both. */
  configFile?: string;
  /** Start with this scenario's rules active ([scenarios.NAME] in the config). */
  scenario?: string;
  /**
   * The stunfault binary. Absent: `stunfault` on PATH, and when there is
   * none, the binary built (once per process, with `go build`) from the
   * stunfault module found above this package or the working directory, or
   * at goModule.
   */
  binary?: string;
  /** The root of a stunfault source tree (its go.mod) to build when no binary is found. */
  goModule?: string;
  /** The control token, when the config sets [http].token. */
  token?: string;
  /** stunfault's -log-level (default "warn"). */
  logLevel?: "debug" | "info" | "warn" | "error";
  /** Called with each line stunfault writes on stderr (its logs). Absent: kept for error messages only. */
  onLog?: (line: string) => void;
  /** Extra flags for `stunfault serve`. */
  args?: string[];
  /** How long to wait for the ready line, in ms (default 30000; a first go build adds up to 5 minutes). */
  timeout?: number;
}

/** The line `stunfault serve -ready-json` prints once every socket is bound. */
export interface ReadyLine {
  ready: true;
  version: string;
  pid: number;
  seed: number;
  /** The STUN/TURN sockets with their real ports, in config order. */
  listeners: Listener[];
  http_url: string;
  control_url: string;
  ice_servers: IceServer[];
  scenario?: string;
  rules: number;
  token_required?: boolean;
}

/** A running stunfault process, from startStunfault. */
export interface Stunfault {
  /** What RTCPeerConnection takes as iceServers: stun: and turn: URLs with credentials, real ports. */
  iceServers: IceServer[];
  /** The control socket (ws://127.0.0.1:PORT/control). */
  controlUrl: string;
  /** The HTTP side (http://127.0.0.1:PORT): /healthz, /webhook/NAME, /api/OP. */
  httpUrl: string;
  /** The first UDP listener as host:port: where a STUN Binding goes. */
  stunAddress: string;
  /** A client connected to controlUrl; stop() closes it. */
  client: Client;
  /** The process id. */
  pid: number;
  /** The ready line, whole. */
  ready: ReadyLine;
  /** stunfault's stderr so far (the last 64 KiB). */
  logs(): string;
  /**
   * Closes the client, ends the process (SIGTERM, then SIGKILL after 10 s)
   * and waits for it to exit. Rejects with a `process` error when stunfault
   * exited with a status other than 0 (it exits 0 on SIGTERM). Safe to call
   * more than once.
   */
  stop(): Promise<void>;
}

/** How much of stunfault's stderr is kept for error messages. */
const LOG_KEEP = 64 << 10;

/**
 * The stunfault processes this process started and has not seen exit:
 * killed if this process exits first. (One that dies by a signal cannot run
 * this; its children then see their stdin close and stop by themselves.)
 */
const live = new Set<ChildProcess>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL");
    if (built) rmSync(dirname(built), { recursive: true, force: true });
  });
}

/**
 * Starts a stunfault process on free loopback ports (`serve -free-ports
 * -ready-json`: every listener and the HTTP side of the config move to port
 * 0), waits for its ready line (no sleeping, no polling: the line comes once
 * every socket is bound), connects a client, and returns where to point
 * clients. Call stop() when done.
 */
export async function startStunfault(opts: StartOptions = {}): Promise<Stunfault> {
  if (opts.config !== undefined && opts.configFile !== undefined) {
    throw new StunfaultError("process", "startStunfault: give config or configFile, not both");
  }
  const timeout = opts.timeout ?? 30_000;
  const bin = await findBinary(opts);
  let dir: string | undefined;
  // -exit-with-stdin: stunfault stops when its stdin pipe closes, so it
  // never outlives this process, even one killed with SIGKILL (Playwright
  // kills a worker that times out).
  const args = ["serve", "-free-ports", "-ready-json", "-exit-with-stdin", "-log-level", opts.logLevel ?? "warn"];
  if (opts.config !== undefined) {
    dir = mkdtempSync(join(tmpdir(), "stunfault-"));
    const file = join(dir, "stunfault.toml");
    writeFileSync(file, opts.config);
    args.push("-config", file);
  } else if (opts.configFile !== undefined) {
    args.push("-config", resolve(opts.configFile));
  }
  if (opts.scenario) args.push("-scenario", opts.scenario);
  args.push(...(opts.args ?? []));

  hookExit();
  const child = spawn(bin, args, { stdio: ["pipe", "pipe", "pipe"] });
  child.stdin!.on("error", () => {}); // EPIPE once it has exited: nothing to tell
  live.add(child);
  let stderr = "";
  let partial = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (s: string) => {
    stderr = (stderr + s).slice(-LOG_KEEP);
    if (!opts.onLog) return;
    partial += s;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const l of lines) opts.onLog(l);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once("exit", (code, signal) => {
      live.delete(child);
      res({ code, signal });
    });
  });
  const cleanup = () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  const tail = () => (stderr.trim() ? `; stderr:\n${stderr.trim().split("\n").slice(-20).join("\n")}` : "");

  let ready: ReadyLine;
  try {
    ready = await readyLine(child, exited, timeout, bin, tail);
  } catch (e) {
    child.kill("SIGKILL");
    await exited;
    cleanup();
    throw e;
  }

  let client: Client;
  try {
    client = await connect(ready.control_url, { ...(opts.token ? { token: opts.token } : {}) });
  } catch (e) {
    child.kill("SIGTERM");
    await exited;
    cleanup();
    throw e;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await client.close().catch(() => {});
      child.kill("SIGTERM");
      const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const { code, signal } = await exited;
      clearTimeout(kill);
      cleanup();
      if (code !== 0) {
        throw new StunfaultError("process", `stunfault (pid ${child.pid}) exited with ${code !== null ? `status ${code}` : signal}${tail()}`);
      }
    })();
    return stopping;
  };

  const udp = ready.listeners.find((l) => l.transport === "udp");
  return {
    iceServers: ready.ice_servers,
    controlUrl: ready.control_url,
    httpUrl: ready.http_url,
    stunAddress: udp?.address ?? "",
    client,
    pid: ready.pid,
    ready,
    logs: () => stderr,
    stop,
  };
}

/** Reads the first stdout line of child as the ready line. */
function readyLine(
  child: ChildProcess,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  timeout: number,
  bin: string,
  tail: () => string,
): Promise<ReadyLine> {
  return new Promise<ReadyLine>((res, rej) => {
    let buf = "";
    let done = false;
    const finish = (err: StunfaultError | undefined, line?: ReadyLine) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // Nothing follows the ready line on stdout; keep draining so the
      // pipe never fills.
      child.stdout!.removeAllListeners("data");
      child.stdout!.resume();
      if (err) rej(err);
      else res(line!);
    };
    const timer = setTimeout(
      () => finish(new StunfaultError("timeout", `stunfault (${bin}) printed no ready line within ${timeout} ms${tail()}`)),
      timeout,
    );
    child.once("error", (e) => finish(new StunfaultError("process", `start ${bin}: ${e.message}`, { cause: e })));
    void exited.then(({ code, signal }) => {
      // Let the last stderr chunk arrive before quoting it.
      setImmediate(() =>
        finish(new StunfaultError("process", `stunfault (${bin}) exited with ${code !== null ? `status ${code}` : signal} before it was ready${tail()}`)),
      );
    });
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (s: string) => {
      buf += s;
      const nl = buf.indexOf("\n");
      if (nl < 0) {
        if (buf.length > 1 << 20) finish(new StunfaultError("bad_reply", `stunfault (${bin}): no newline in the first MiB of stdout`));
        return;
      }
      const line = buf.slice(0, nl);
      try {
        const r = JSON.parse(line) as ReadyLine;
        if (r.ready !== true) throw new Error(`no "ready": true`);
        finish(undefined, r);
      } catch (e) {
        finish(
          new StunfaultError(
            "bad_reply",
            `stunfault (${bin}): the first stdout line is not a ready line (${(e as Error).message}): ${JSON.stringify(line.slice(0, 200))}; is it older than -ready-json?`,
          ),
        );
      }
    });
  });
}

/** The binary built from source by this process, if any. */
let built: string | undefined;
let building: Promise<string> | undefined;

/** Finds the stunfault binary to run: opts.binary, then PATH, then one built from the Go module. */
async function findBinary(opts: StartOptions): Promise<string> {
  if (opts.binary) {
    if (!existsSync(opts.binary)) throw new StunfaultError("process", `startStunfault: binary ${opts.binary} does not exist`);
    return opts.binary;
  }
  const onPath = lookPath("stunfault");
  if (onPath) return onPath;
  const root = opts.goModule ?? findModule();
  if (!root) {
    throw new StunfaultError(
      "process",
      "startStunfault: no stunfault binary: put one on PATH (go install github.com/stunfault/stunfault@latest), " +
        "pass binary, or run from inside a stunfault source tree (or pass goModule) to build one",
    );
  }
  building ??= buildFrom(root);
  return building;
}

/** Runs go build in root, once, into a temporary directory removed when this process exits. */
function buildFrom(root: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "stunfault-bin-"));
  const out = join(dir, process.platform === "win32" ? "stunfault.exe" : "stunfault");
  return new Promise<string>((res, rej) => {
    execFile("go", ["build", "-o", out, "."], { cwd: root, timeout: 5 * 60_000, maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (err) {
        rmSync(dir, { recursive: true, force: true });
        building = undefined;
        rej(new StunfaultError("process", `startStunfault: go build in ${root}: ${err.message}\n${stderr}`, { cause: err }));
        return;
      }
      built = out;
      hookExit();
      res(out);
    });
  });
}

/** The stunfault module root above this package's directory or the working directory. */
function findModule(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const start of [here, process.cwd()]) {
    for (let d = start; ; d = dirname(d)) {
      const mod = join(d, "go.mod");
      if (existsSync(mod) && /^module\s+github\.com\/stunfault\/stunfault\s*$/m.test(readFileSync(mod, "utf8"))) return d;
      if (dirname(d) === d) break;
    }
  }
  return undefined;
}

/** The first executable named name on PATH. */
function lookPath(name: string): string | undefined {
  for (const d of (process.env["PATH"] ?? "").split(delimiter)) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}
