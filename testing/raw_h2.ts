/**
 * A bare HTTP/2 client speaking frames over a TCP socket, for peers no
 * library will imitate: per-stream flow control chosen by hand (a stream
 * that never gets window while its sibling does, as grpc-go or Java peers
 * can), garbage, and half-finished handshakes.
 *
 * @module
 */

const encoder = new TextEncoder();

const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6;
const GOAWAY = 7, WINDOW_UPDATE = 8, CONTINUATION = 9;
const END_STREAM = 1, END_HEADERS = 4, ACK = 1;
const MAX_FRAME = 16_384;

function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length << 8);
  out[3] = type;
  out[4] = flags;
  view.setUint32(5, stream);
  out.set(payload, 9);
  return out;
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

/** An HPACK string length (7-bit prefix, no Huffman). */
function hpackLength(length: number): number[] {
  if (length < 127) return [length];
  const out = [127];
  for (length -= 127; length >= 128; length = Math.floor(length / 128)) {
    out.push((length % 128) | 128);
  }
  out.push(length);
  return out;
}

/** HPACK "literal without indexing, new name" for each header. */
function headerBlock(headers: Record<string, string>): Uint8Array {
  const parts = Object.entries(headers).flatMap(([name, value]) => {
    const n = encoder.encode(name), v = encoder.encode(value);
    return [0, ...hpackLength(n.length), ...n, ...hpackLength(v.length), ...v];
  });
  return new Uint8Array(parts);
}

/** Options of {@linkcode RawH2.connect}. */
export interface RawH2Options {
  /** SETTINGS_INITIAL_WINDOW_SIZE the client announces. Default 65535. */
  initialWindowSize?: number;
  /** Whether the server's SETTINGS are acknowledged (until they are, they do not bind). Default true. */
  ackSettings?: boolean;
}

/** One HTTP/2 connection driven frame by frame. */
export class RawH2 implements AsyncDisposable {
  #conn: Deno.TcpConn;
  #reading: Promise<void>;
  #autoGrant = new Set<number>();
  /** DATA bytes received per stream. */
  readonly received = new Map<number, number>();
  /** RST_STREAM error codes received, per stream. */
  readonly resets = new Map<number, number>();
  /** Streams the server ended (a HEADERS frame with END_STREAM: trailers). */
  readonly ended = new Set<number>();
  /** Whether the server's SETTINGS arrived (and were acknowledged). */
  settled = false;
  /** Set when the server sent GOAWAY or the connection ended. */
  closed?: string;

  #writing: Promise<void> = Promise.resolve();
  #ackSettings: boolean;

  private constructor(conn: Deno.TcpConn, ackSettings: boolean) {
    this.#conn = conn;
    this.#ackSettings = ackSettings;
    this.#reading = this.#read();
  }

  /** Connects to 127.0.0.1:`port`, sends the preface and SETTINGS. */
  static async connect(port: number, options: RawH2Options = {}) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const settings = new Uint8Array(6);
    new DataView(settings.buffer).setUint16(0, 4); // INITIAL_WINDOW_SIZE
    new DataView(settings.buffer).setUint32(
      2,
      options.initialWindowSize ?? 65535,
    );
    // The preface and our SETTINGS go out before the reader can answer the
    // server's SETTINGS: a SETTINGS ACK first is a PROTOCOL_ERROR
    // ("SETTINGS expected").
    const preface = [
      encoder.encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
      frame(SETTINGS, 0, 0, settings),
      frame(WINDOW_UPDATE, 0, 0, u32(1 << 30)),
    ];
    for (const bytes of preface) await writeAll(conn, bytes);
    return new RawH2(conn, options.ackSettings ?? true);
  }

  /**
   * Writes raw bytes to the socket, after every earlier write: writes from
   * the caller and from the reader (ACKs, window) never interleave.
   */
  send(bytes: Uint8Array): Promise<void> {
    this.#writing = this.#writing.then(() => writeAll(this.#conn, bytes));
    return this.#writing;
  }

  /**
   * Opens a gRPC call on odd `stream` id and sends `body` (ends the
   * request); `metadata` adds headers (a block over 16 KiB goes out as
   * HEADERS and CONTINUATION frames).
   */
  async call(
    stream: number,
    path: string,
    body: Uint8Array,
    metadata: Record<string, string> = {},
  ): Promise<void> {
    const block = headerBlock({
      ":method": "POST",
      ":scheme": "http",
      ":path": path,
      ":authority": "localhost",
      "content-type": "application/grpc",
      te: "trailers",
      ...metadata,
    });
    for (let at = 0; at < block.length || at === 0; at += MAX_FRAME) {
      const last = at + MAX_FRAME >= block.length;
      await this.send(frame(
        at === 0 ? HEADERS : CONTINUATION,
        last ? END_HEADERS : 0,
        stream,
        block.subarray(at, at + MAX_FRAME),
      ));
    }
    // DATA frames of at most 16 KiB, the default SETTINGS_MAX_FRAME_SIZE.
    for (let offset = 0; offset < body.length || offset === 0;) {
      const end = Math.min(body.length, offset + MAX_FRAME);
      const endStream = end === body.length ? 1 : 0;
      await this.send(
        frame(DATA, endStream, stream, body.subarray(offset, end)),
      );
      if (endStream) break;
      offset = end;
    }
  }

  /** Reads `stream` from now on: grants it window for what arrives. */
  async read(stream: number): Promise<void> {
    this.#autoGrant.add(stream);
    await this.send(frame(WINDOW_UPDATE, 0, stream, u32(1 << 20)));
  }

  /** Resets `stream` (RST_STREAM, CANCEL): the client gives up on it. */
  async reset(stream: number): Promise<void> {
    await this.send(frame(RST_STREAM, 0, stream, u32(8)));
  }

  async #read(): Promise<void> {
    let buffer = new Uint8Array(0);
    const chunk = new Uint8Array(1 << 16);
    try {
      for (;;) {
        const n = await this.#conn.read(chunk);
        if (n === null) return void (this.closed ??= "EOF");
        const joined = new Uint8Array(buffer.length + n);
        joined.set(buffer);
        joined.set(chunk.subarray(0, n), buffer.length);
        buffer = joined;
        let offset = 0;
        while (buffer.length - offset >= 9) {
          const view = new DataView(buffer.buffer, buffer.byteOffset + offset);
          const length = view.getUint32(0) >>> 8;
          if (buffer.length - offset < 9 + length) break;
          const type = buffer[offset + 3], flags = buffer[offset + 4];
          const stream = view.getUint32(5) & 0x7fffffff;
          const payload = buffer.slice(offset + 9, offset + 9 + length);
          offset += 9 + length;
          await this.#handle(type, flags, stream, payload);
        }
        buffer = buffer.slice(offset);
      }
    } catch (error) {
      this.closed ??= String(error);
    }
  }

  async #handle(
    type: number,
    flags: number,
    stream: number,
    payload: Uint8Array,
  ) {
    if (type === SETTINGS && !(flags & ACK)) {
      if (!this.#ackSettings) return;
      await this.send(frame(SETTINGS, ACK, 0, new Uint8Array(0)));
      this.settled = true;
    } else if (type === PING && !(flags & ACK)) {
      await this.send(frame(PING, ACK, 0, payload));
    } else if (type === DATA && payload.length > 0) {
      this.received.set(
        stream,
        (this.received.get(stream) ?? 0) + payload.length,
      );
      if (this.#autoGrant.has(stream)) {
        await this.send(frame(WINDOW_UPDATE, 0, stream, u32(payload.length)));
        await this.send(frame(WINDOW_UPDATE, 0, 0, u32(payload.length)));
      }
    } else if (type === HEADERS && flags & END_STREAM) {
      this.ended.add(stream);
    } else if (type === GOAWAY || type === RST_STREAM) {
      if (type === RST_STREAM) {
        this.resets.set(stream, new DataView(payload.buffer).getUint32(0));
      }
      if (type === GOAWAY) {
        const view = new DataView(payload.buffer, payload.byteOffset);
        const debug = new TextDecoder().decode(payload.subarray(8));
        this.closed ??= `GOAWAY code ${view.getUint32(4)}${
          debug ? `: ${debug}` : ""
        }`;
      }
    }
  }

  /** Closes the connection and waits for the reader to finish. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // Already closed by the server.
    }
    await this.#reading;
  }
}
