/** SPDK's per-connection receive buffer: one request must fit in it. */
export const DEFAULT_MAX_VALUE_BYTES = 256 * 1024;

/** Options of a {@link JsonStream}. */
export interface JsonStreamOptions {
  /** Largest top-level value, in bytes of UTF-8, that may be buffered. Default 256 KiB. */
  maxValueBytes?: number;
}

/** Why a stream of JSON values cannot be split further. The stream is unusable afterwards. */
export class JsonStreamError extends Error {
  constructor(
    message: string,
    /** Byte offset in the whole stream where the problem was found. */
    readonly offset: number,
  ) {
    super(message);
    this.name = 'JsonStreamError';
  }
}

/** What one {@link JsonStream.feed} call produced. */
export interface JsonFeedResult {
  /** Text of every top-level value completed by this chunk, in stream order; not yet parsed. */
  values: string[];
  /** Set when the stream is broken; `values` still holds the values completed before the fault. */
  error?: JsonStreamError;
}

const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * Splits a byte stream of concatenated JSON objects/arrays with no delimiter, the way SPDK's RPC
 * server consumes its socket. Each byte is scanned once: only depth, in-string and escape state are
 * kept, and the bytes of an unfinished value are held as chunk copies until it closes. Scanning
 * bytes, not characters, is safe because every structural byte is ASCII and never occurs inside a
 * UTF-8 multi-byte sequence; decoding happens once the whole value is known. Synchronous; the
 * caller keeps ownership of the chunks it feeds. Syntax inside a value is left to JSON.parse.
 */
export class JsonStream {
  private readonly maxValueBytes: number;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private consumed = 0;
  private failure: JsonStreamError | undefined;

  constructor(opts: JsonStreamOptions = {}) {
    this.maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  }

  /** True while part of a value is buffered (a stream that ends here was truncated). */
  get partial(): boolean {
    return this.depth > 0;
  }

  /** Scans one chunk, which may split a value, a string or a UTF-8 character anywhere. */
  feed(chunk: Uint8Array): JsonFeedResult {
    if (this.failure) return { values: [], error: this.failure };
    const values: string[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (this.depth === 0) {
        if (isSpace(b)) continue;
        // SPDK's parser also rejects a bare scalar here: a request is an object, a batch an array.
        if (b !== OPEN_OBJECT && b !== OPEN_ARRAY) return this.fail(values, `unexpected byte 0x${b.toString(16)} outside a JSON object or array`, i);
        this.depth = 1;
        start = i;
      } else if (this.scan(b)) {
        const error = this.tooLarge(i + 1 - start, i);
        if (error) return { values, error };
        const text = this.finish(chunk.subarray(start, i + 1));
        if (text === null) return this.fail(values, 'value is not valid UTF-8', i);
        values.push(text);
      }
    }
    return this.keepTail(chunk, start, values);
  }

  /** Advances the in-value state by one byte; true when the top-level value just closed. */
  private scan(b: number): boolean {
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (b === BACKSLASH) this.escaped = true;
      else if (b === QUOTE) this.inString = false;
      return false;
    }
    if (b === QUOTE) this.inString = true;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) this.depth++;
    else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) return --this.depth === 0;
    return false;
  }

  private keepTail(chunk: Uint8Array, start: number, values: string[]): JsonFeedResult {
    if (this.depth > 0) {
      const tail = chunk.subarray(start);
      const error = this.tooLarge(tail.length, chunk.length - 1);
      if (error) return { values, error };
      // Copy: the caller may reuse its buffer, and a subarray would pin the whole chunk.
      this.pending.push(Buffer.from(tail));
      this.pendingBytes += tail.length;
    }
    this.consumed += chunk.length;
    return { values };
  }

  private tooLarge(more: number, at: number): JsonStreamError | undefined {
    if (this.pendingBytes + more <= this.maxValueBytes) return undefined;
    return this.fail([], `value exceeds ${this.maxValueBytes} bytes`, at).error;
  }

  /** Joins the buffered pieces with the closing piece; null when the bytes are not UTF-8. */
  private finish(last: Uint8Array): string | null {
    const bytes = this.pending.length === 0 ? last : Buffer.concat([...this.pending, last]);
    this.pending = [];
    this.pendingBytes = 0;
    try {
      return this.decoder.decode(bytes);
    } catch {
      return null;
    }
  }

  private fail(values: string[], message: string, at: number): JsonFeedResult {
    this.failure = new JsonStreamError(message, this.consumed + at);
    this.pending = [];
    this.pendingBytes = 0;
    return { values, error: this.failure };
  }
}
