// A STUN Binding by hand (RFC 8489): the tests check what stunfault answers
// on the wire without any STUN library.
import { createSocket, type Socket } from "node:dgram";
import { randomBytes } from "node:crypto";

const MAGIC = 0x2112a442;

/** What a Binding request got. */
export interface BindingAnswer {
  /** 0 for a success response, else the ERROR-CODE (class * 100 + number). */
  code: number;
  reason: string;
  /** The XOR-MAPPED-ADDRESS of a success, as ip:port. */
  mapped: string;
  /** The local address the request was sent from, as ip:port. */
  from: string;
}

/** Builds the 20-byte Binding request: type, length 0, magic cookie, transaction id. */
export function bindingRequest(txid: Buffer): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt32BE(MAGIC, 4);
  txid.copy(b, 8);
  return b;
}

/** Parses a Binding response for txid; throws on anything else. */
export function parseResponse(msg: Buffer, txid: Buffer): Omit<BindingAnswer, "from"> {
  if (msg.length < 20) throw new Error(`response of ${msg.length} bytes, want at least 20`);
  const type = msg.readUInt16BE(0);
  const length = msg.readUInt16BE(2);
  if (msg.readUInt32BE(4) !== MAGIC) throw new Error("response without the magic cookie");
  if (!msg.subarray(8, 20).equals(txid)) throw new Error("response for another transaction");
  if (20 + length > msg.length) throw new Error(`response length ${length} beyond the ${msg.length} bytes read`);
  const out = { code: 0, reason: "", mapped: "" };
  for (let off = 20; off + 4 <= 20 + length; ) {
    const at = msg.readUInt16BE(off);
    const al = msg.readUInt16BE(off + 2);
    const v = msg.subarray(off + 4, off + 4 + al);
    if (at === 0x0009 && al >= 4) {
      out.code = (v[2]! & 0x07) * 100 + v[3]!;
      out.reason = v.subarray(4).toString("utf8");
    } else if (at === 0x0020 && al >= 8 && v[1] === 0x01) {
      const port = v.readUInt16BE(2) ^ (MAGIC >>> 16);
      const ip = (v.readUInt32BE(4) ^ MAGIC) >>> 0;
      out.mapped = `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}:${port}`;
    }
    off += 4 + al + ((4 - (al % 4)) % 4);
  }
  switch (type) {
    case 0x0101:
      if (out.code !== 0) throw new Error("success response with an ERROR-CODE");
      break;
    case 0x0111:
      if (out.code === 0) throw new Error("error response without ERROR-CODE");
      break;
    default:
      throw new Error(`response type 0x${type.toString(16)}, want a Binding success or error`);
  }
  return out;
}

/**
 * Sends one Binding request from a fresh UDP socket on 127.0.0.1 to addr
 * (ip:port) and resolves with the answer. Rejects after timeout ms without
 * one (the request is sent once: on loopback nothing is lost, so silence
 * means stunfault dropped it).
 */
export async function binding(addr: string, timeout = 3000): Promise<BindingAnswer> {
  const i = addr.lastIndexOf(":");
  const host = addr.slice(0, i);
  const port = Number(addr.slice(i + 1));
  const sock: Socket = createSocket("udp4");
  await new Promise<void>((res) => sock.bind(0, "127.0.0.1", () => res()));
  const from = `127.0.0.1:${sock.address().port}`;
  const txid = randomBytes(12);
  try {
    return await new Promise<BindingAnswer>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no answer to a Binding from ${from} to ${addr} within ${timeout} ms`)), timeout);
      sock.on("message", (msg) => {
        clearTimeout(timer);
        try {
          res({ ...parseResponse(msg, txid), from });
        } catch (e) {
          rej(e);
        }
      });
      sock.send(bindingRequest(txid), port, host);
    });
  } finally {
    sock.close();
  }
}
