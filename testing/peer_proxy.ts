/**
 * Another peer on loopback: a TCP proxy on 127.0.0.1 whose connections
 * reach the upstream from another loopback address (`127.0.0.2`, …; Linux
 * routes all of 127/8 to lo), so the server sees them as a different peer,
 * as it counts peers (shares, limits) by remote address.
 *
 * @module
 */

import net from "node:net";

/**
 * A running proxy; dispose of it to stop listening and close every
 * connection.
 *
 * @example
 * ```ts ignore
 * await using other = await PeerProxy.start(50051, "127.0.0.2");
 * const client = new GreeterClient(other.target); // the server sees 127.0.0.2
 * ```
 */
export class PeerProxy implements AsyncDisposable {
  /** `127.0.0.1:PORT` to dial instead of the upstream. */
  readonly target: string;
  #server: net.Server;
  #sockets = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.#server = server;
    this.target = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  }

  /**
   * Listens on 127.0.0.1 and an ephemeral port; each connection goes on to
   * `127.0.0.1:upstreamPort` from `from` (a loopback address).
   */
  static async start(upstreamPort: number, from: string): Promise<PeerProxy> {
    // Fails here, not in a connection's callback, without the permission to
    // use `from` (the test task allows 127.0.0.2 to 127.0.0.5).
    Deno.listen({ hostname: from, port: 0 }).close();
    const sockets = new Set<net.Socket>();
    const track = (socket: net.Socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.once("close", () => sockets.delete(socket));
    };
    const server = net.createServer((client) => {
      track(client);
      let upstream: net.Socket;
      try {
        upstream = net.connect({
          host: "127.0.0.1",
          port: upstreamPort,
          localAddress: from,
        });
      } catch {
        client.destroy();
        return;
      }
      track(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.once("close", () => upstream.destroy());
      upstream.once("close", () => client.destroy());
    });
    await new Promise<void>((resolve) =>
      server.listen({ host: "127.0.0.1", port: 0 }, resolve)
    );
    const proxy = new PeerProxy(server);
    proxy.#sockets = sockets;
    return proxy;
  }

  /** Stops listening and closes every connection. */
  async [Symbol.asyncDispose](): Promise<void> {
    const closed = new Promise<void>((resolve) =>
      this.#server.close(() => resolve())
    );
    const gone = [...this.#sockets].map((socket) =>
      new Promise<void>((resolve) => {
        if (socket.destroyed) return resolve();
        socket.once("close", () => resolve());
        socket.destroy();
      })
    );
    await Promise.all([closed, ...gone]);
  }
}
