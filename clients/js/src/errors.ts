/** The error codes of the control protocol (docs/control.md, "Errors"). Branch on these, never on the message. */
export type ProtocolErrorCode =
  | "bad_json"
  | "missing_id"
  | "bad_request"
  | "unknown_op"
  | "not_found"
  | "unknown_scenario"
  | "unknown_webhook"
  | "unknown_allocation"
  | "invalid_rule"
  | "clock_not_manual"
  | "unauthorized"
  | "forbidden_origin"
  | "too_large"
  | "unsupported_media_type"
  | "limit_exceeded"
  | "internal";

/**
 * The codes this client gives errors that did not come from the server:
 * `closed` (the connection ended before the reply), `timeout` (no reply, or
 * no event, in time), `aborted` (the caller's AbortSignal fired), `connect`
 * (the socket could not be opened), `bad_reply` (the server sent something
 * this client cannot read), `process` (the fixture's stunfault process failed).
 */
export type ClientErrorCode = "closed" | "timeout" | "aborted" | "connect" | "bad_reply" | "process";

/** Every code a StunfaultError can carry. */
export type ErrorCode = ProtocolErrorCode | ClientErrorCode;

/** One of several problems of one error, such as one bad rule among those given to rules.replace. */
export interface ErrorDetail {
  field?: string;
  message: string;
  /** The line of rules.parse's text at fault. */
  line?: number;
}

/** The wire form of an error (a reply's `error`). */
export interface WireError {
  code: string;
  message: string;
  field?: string;
  details?: ErrorDetail[];
  /** The line of rules.parse's text at fault. */
  line?: number;
}

/**
 * StunfaultError is every error this package throws. `code` is the
 * protocol's code (`invalid_rule`, `not_found`, ...) for an error the server
 * answered, or one of the client's own (`closed`, `timeout`, ...); `field`
 * names the request field at fault as the request spells it
 * (`match.methods[0]`, `rules[2].action.code`, `rule_id`) when there is one;
 * `details` lists every problem when there were several (`field` and
 * `message` are then the first's); `op` is the op that failed.
 */
export class StunfaultError extends Error {
  override name = "StunfaultError";
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly details: ErrorDetail[];
  readonly op: string | undefined;
  /** The line of rules.parse's text at fault, when there is one. */
  readonly line: number | undefined;

  constructor(code: ErrorCode, message: string, opts: { field?: string | undefined; details?: ErrorDetail[] | undefined; op?: string | undefined; line?: number | undefined; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.field = opts.field || undefined;
    this.details = opts.details ?? [];
    this.op = opts.op;
    this.line = opts.line || undefined;
  }

  /** Builds the error for a reply's `error` object. */
  static fromWire(e: WireError, op?: string): StunfaultError {
    return new StunfaultError(e.code as ErrorCode, e.message, { field: e.field, details: e.details, op, line: e.line });
  }

  /** "op: code: message (field)". */
  override toString(): string {
    const where = this.field ? ` (${this.field})` : "";
    return `${this.name}: ${this.op ? this.op + ": " : ""}${this.code}: ${this.message}${where}`;
  }
}

/** Reports whether err is a StunfaultError with the given code. */
export function isStunfaultError(err: unknown, code?: ErrorCode): err is StunfaultError {
  return err instanceof StunfaultError && (code === undefined || err.code === code);
}
