// A TURN client by hand (RFC 8656 with RFC 8489's long-term credentials),
// over UDP or TCP: just enough to hold a real allocation in stunfault, so
// the allocation ops are checked on what a TURN client then gets.
import { createHash, createHmac, randomBytes } from "node:crypto";
import { createSocket, type Socket as UDPSocket } from "node:dgram";
import { connect as tcpConnect, type Socket as TCPSocket } from "node:net";

const MAGIC = 0x2112a442;

/** The STUN methods used here. */
export const ALLOCATE = 0x003;
export const REFRESH = 0x004;
export const CREATE_PERMISSION = 0x008;
export const CHANNEL_BIND = 0x009;

const ATTR_USERNAME = 0x0006;
const ATTR_MESSAGE_INTEGRITY = 0x0008;
const ATTR_ERROR_CODE = 0x0009;
const ATTR_CHANNEL_NUMBER = 0x000c;
const ATTR_LIFETIME = 0x000d;
const ATTR_XOR_PEER_ADDRESS = 0x0012;
const ATTR_REALM = 0x0014;
const ATTR_NONCE = 0x0015;
const ATTR_XOR_RELAYED_ADDRESS = 0x0016;
const ATTR_REQUESTED_TRANSPORT = 0x0019;

/** What a request got. */
export interface Answer {
  /** 0 for a success response, else the ERROR-CODE (class * 100 + number). */
  code: number;
  reason: string;
  /** The attributes by type, raw (the first of each type). */
  attrs: Map<number, Buffer>;
}

/** Encodes one attribute, padded to 4 bytes. */
function attr(type: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + value.length + ((4 - (value.length % 4)) % 4));
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(value.length, 2);
  value.copy(b, 4);
  return b;
}

/** Encodes an XOR-PEER-ADDRESS (IPv4 ip:port). */
function xorPeer(addr: string): Buffer {
  const [host, port] = split(addr);
  const ip = host.split(".").reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
  const v = Buffer.alloc(8);
  v[1] = 0x01;
  v.writeUInt16BE(port ^ (MAGIC >>> 16), 2);
  v.writeUInt32BE((ip ^ MAGIC) >>> 0, 4);
  return attr(ATTR_XOR_PEER_ADDRESS, v);
}

/** Decodes an XOR-MAPPED/RELAYED-ADDRESS value (IPv4) as ip:port. */
function xorAddress(v: Buffer): string {
  const port = v.readUInt16BE(2) ^ (MAGIC >>> 16);
  const ip = (v.readUInt32BE(4) ^ MAGIC) >>> 0;
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}:${port}`;
}

/**
 * One TURN client on its own socket, with long-term credentials. Requests
 * are sent once and answered in order (loopback loses nothing); a request
 * without an answer within timeout ms rejects.
 */
export class TurnClient {
  /** The local address as ip:port: the allocation's `client`. */
  readonly local: string;
  /** The relayed address of the last successful Allocate. */
  relay = "";
  /** Resolves when a TCP connection is closed by the server (never for UDP). */
  readonly closed: Promise<void>;

  readonly #send: (b: Buffer) => void;
  readonly #end: () => void;
  readonly #waiting = new Map<string, (msg: Buffer) => void>();
  #realm = "";
  #nonce = "";

  private constructor(local: string, send: (b: Buffer) => void, end: () => void, closed: Promise<void>) {
    this.local = local;
    this.#send = send;
    this.#end = end;
    this.closed = closed;
  }

  /** A client on a fresh UDP socket on 127.0.0.1, talking to addr (ip:port). */
  static async udp(addr: string): Promise<TurnClient> {
    const [host, port] = split(addr);
    const sock: UDPSocket = createSocket("udp4");
    await new Promise<void>((res) => sock.bind(0, "127.0.0.1", () => res()));
    const c = new TurnClient(
      `127.0.0.1:${sock.address().port}`,
      (b) => sock.send(b, port, host),
      () => sock.close(),
      new Promise<void>(() => {}),
    );
    sock.on("message", (msg) => c.#deliver(msg));
    return c;
  }

  /** A client on a TCP connection from 127.0.0.1 to addr (ip:port). */
  static async tcp(addr: string): Promise<TurnClient> {
    const [host, port] = split(addr);
    const sock: TCPSocket = await new Promise((res, rej) => {
      const s = tcpConnect({ host, port, localAddress: "127.0.0.1" }, () => res(s));
      s.once("error", rej);
    });
    sock.on("error", () => {}); // "close" follows
    const closed = new Promise<void>((res) => sock.once("close", () => res()));
    const c = new TurnClient(`127.0.0.1:${sock.localPort}`, (b) => sock.write(b), () => sock.destroy(), closed);
    // RFC 8489 framing over TCP: messages back to back, each 20 bytes of
    // header plus the length it gives. The buffer holds at most one message
    // (64 KiB) plus one read.
    let buf = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 20 && buf.length >= 20 + buf.readUInt16BE(2)) {
        const n = 20 + buf.readUInt16BE(2);
        c.#deliver(buf.subarray(0, n));
        buf = buf.subarray(n);
      }
    });
    return c;
  }

  #deliver(msg: Buffer): void {
    if (msg.length < 20 || msg.readUInt32BE(4) !== MAGIC) return;
    const key = msg.subarray(8, 20).toString("hex");
    const w = this.#waiting.get(key);
    if (!w) return;
    this.#waiting.delete(key);
    w(msg);
  }

  /** Closes the socket. */
  close(): void {
    this.#end();
  }

  /**
   * Sends one request of method with attrs, signed with the realm and nonce
   * learnt so far when sign is set, and resolves with its answer. A 401 or
   * 438 answer's REALM and NONCE are kept for the next signed request.
   */
  async request(method: number, attrs: Buffer[], sign: boolean, timeout = 3000): Promise<Answer> {
    const txid = randomBytes(12);
    const body = [...attrs];
    if (sign) {
      body.push(attr(ATTR_USERNAME, Buffer.from("user")));
      body.push(attr(ATTR_REALM, Buffer.from(this.#realm)));
      body.push(attr(ATTR_NONCE, Buffer.from(this.#nonce)));
    }
    let msg = Buffer.concat([header(method, 0, txid), ...body]);
    if (sign) {
      // MESSAGE-INTEGRITY: HMAC-SHA1 under MD5(user:realm:pass), over the
      // message with its length already counting the attribute (RFC 8489 14.5).
      msg.writeUInt16BE(msg.length - 20 + 24, 2);
      const key = createHash("md5").update(`user:${this.#realm}:pass`).digest();
      msg = Buffer.concat([msg, attr(ATTR_MESSAGE_INTEGRITY, createHmac("sha1", key).update(msg).digest())]);
    }
    msg.writeUInt16BE(msg.length - 20, 2);
    const reply = await new Promise<Buffer>((res, rej) => {
      const key = txid.toString("hex");
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        rej(new Error(`no answer to method 0x${method.toString(16)} from ${this.local} within ${timeout} ms`));
      }, timeout);
      this.#waiting.set(key, (m) => {
        clearTimeout(timer);
        res(m);
      });
      this.#send(msg);
    });
    const a = parse(reply, method);
    if (a.code === 401 || a.code === 438) {
      this.#realm = a.attrs.get(ATTR_REALM)?.toString("utf8") ?? this.#realm;
      this.#nonce = a.attrs.get(ATTR_NONCE)?.toString("utf8") ?? this.#nonce;
    }
    return a;
  }

  /**
   * Allocates a UDP relay as a TURN client does: an unsigned Allocate, its
   * 401 challenge, the signed one (and once more after a 438, the answer to
   * a first signed request after nonces.rotate). Throws unless it succeeds.
   */
  async allocate(): Promise<string> {
    const transport = attr(ATTR_REQUESTED_TRANSPORT, Buffer.from([17, 0, 0, 0]));
    let a = await this.request(ALLOCATE, [transport], false);
    if (a.code !== 401) throw new Error(`unsigned Allocate got ${a.code} ${a.reason}, want 401`);
    a = await this.request(ALLOCATE, [transport], true);
    if (a.code === 438) a = await this.request(ALLOCATE, [transport], true);
    if (a.code !== 0) throw new Error(`signed Allocate got ${a.code} ${a.reason}, want a success`);
    const relay = a.attrs.get(ATTR_XOR_RELAYED_ADDRESS);
    if (!relay) throw new Error("Allocate success without XOR-RELAYED-ADDRESS");
    this.relay = xorAddress(relay);
    return this.relay;
  }

  /** Sends a signed CreatePermission for peer (ip:port) and resolves with its answer. */
  async createPermission(peer: string): Promise<Answer> {
    return this.request(CREATE_PERMISSION, [xorPeer(peer)], true);
  }

  /** Sends a signed ChannelBind of number (0x4000-0x7FFF) to peer (ip:port) and resolves with its answer. */
  async channelBind(number: number, peer: string): Promise<Answer> {
    const v = Buffer.alloc(4);
    v.writeUInt16BE(number, 0);
    return this.request(CHANNEL_BIND, [attr(ATTR_CHANNEL_NUMBER, v), xorPeer(peer)], true);
  }

  /** Sends a signed Refresh (with LIFETIME when given) and resolves with its answer. */
  async refresh(lifetime?: number): Promise<Answer> {
    const attrs: Buffer[] = [];
    if (lifetime !== undefined) {
      const v = Buffer.alloc(4);
      v.writeUInt32BE(lifetime, 0);
      attrs.push(attr(ATTR_LIFETIME, v));
    }
    return this.request(REFRESH, attrs, true);
  }
}

function split(addr: string): [string, number] {
  const i = addr.lastIndexOf(":");
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

function header(method: number, length: number, txid: Buffer): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(method, 0); // class request: no class bits
  b.writeUInt16BE(length, 2);
  b.writeUInt32BE(MAGIC, 4);
  txid.copy(b, 8);
  return b;
}

/** Parses the answer to a request of method; throws on anything else. */
function parse(msg: Buffer, method: number): Answer {
  const type = msg.readUInt16BE(0);
  const length = msg.readUInt16BE(2);
  if (20 + length > msg.length) throw new Error(`answer length ${length} beyond the ${msg.length} bytes read`);
  const a: Answer = { code: 0, reason: "", attrs: new Map() };
  for (let off = 20; off + 4 <= 20 + length; ) {
    const at = msg.readUInt16BE(off);
    const al = msg.readUInt16BE(off + 2);
    if (!a.attrs.has(at)) a.attrs.set(at, msg.subarray(off + 4, off + 4 + al));
    off += 4 + al + ((4 - (al % 4)) % 4);
  }
  const ec = a.attrs.get(ATTR_ERROR_CODE);
  if (ec && ec.length >= 4) {
    a.code = (ec[2]! & 0x07) * 100 + ec[3]!;
    a.reason = ec.subarray(4).toString("utf8");
  }
  // Method bits as in RFC 8489 5: the class bits are 0x0100 (success) and 0x0110 (error).
  if (type === (method | 0x0100)) {
    if (a.code !== 0) throw new Error("success response with an ERROR-CODE");
  } else if (type === (method | 0x0110)) {
    if (a.code === 0) throw new Error("error response without ERROR-CODE");
  } else {
    throw new Error(`answer type 0x${type.toString(16)} to method 0x${method.toString(16)}`);
  }
  return a;
}
