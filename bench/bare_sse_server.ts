/**
 * The floor of the HTTP rows, for the bench only: `Deno.serve` streaming
 * server-sent events with nothing of the greeter's around it: no hub, no
 * buffer bound, no backpressure, no token, no metrics. Every `INTERVAL_MS`
 * one event (shaped as the greeter's: `id: EPOCH:SEQ`, a one-line JSON
 * `data:`) is encoded once and the same bytes are enqueued into every open
 * response. What the greeter's event stream costs beyond this is the cost
 * of what it does; this is `Deno.serve`'s own.
 *
 * `deno run --allow-net --allow-read bench/bare_sse_server.ts PORT INTERVAL_MS [CERT KEY]`
 * prints `listening PORT`; `GET /stats` answers
 * `{"subscribers":N,"handed":M,"published":P}` (events enqueued so far, all
 * responses; events made so far).
 *
 * @module
 */

if (import.meta.main) {
  const [portArg, intervalArg, cert, key] = Deno.args;
  const encoder = new TextEncoder();
  const epoch = crypto.getRandomValues(new Uint8Array(8)).reduce(
    (hex, byte) => hex + byte.toString(16).padStart(2, "0"),
    "",
  );
  const open = new Set<ReadableStreamDefaultController<Uint8Array>>();
  let seq = 0;
  let handed = 0;
  setInterval(() => {
    seq++;
    const data = JSON.stringify({
      seq: String(seq),
      epoch,
      timeMs: String(Date.now()),
      topic: "tick",
    });
    const event = encoder.encode(`id: ${epoch}:${seq}\ndata: ${data}\n\n`);
    for (const controller of open) controller.enqueue(event);
    handed += open.size;
  }, Number(intervalArg));
  const headers = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
  };
  Deno.serve({
    hostname: "127.0.0.1",
    port: Number(portArg),
    ...(cert && key
      ? { cert: Deno.readTextFileSync(cert), key: Deno.readTextFileSync(key) }
      : {}),
    onListen: ({ port }) => console.log(`listening ${port}`),
  }, (request) => {
    if (new URL(request.url).pathname === "/stats") {
      return Response.json({ subscribers: open.size, handed, published: seq });
    }
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    return new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          controller = c;
          open.add(c);
          c.enqueue(encoder.encode("retry: 2000\n\n"));
        },
        cancel() {
          open.delete(controller);
        },
      }),
      { headers },
    );
  });
}
