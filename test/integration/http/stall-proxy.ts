import net from "node:net";

/**
 * A TCP proxy that can stall: `stall()` keeps every connection open but stops moving bytes (and new
 * connections are accepted and never answered), which is what a hung database or a half-open
 * connection looks like to a client. (test/support/tcp-proxy.ts cuts connections instead.)
 */
export interface StallProxy {
  port: number;
  stall(): void;
  close(): Promise<void>;
}

export async function startStallProxy(targetHost: string, targetPort: number): Promise<StallProxy> {
  let stalled = false;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    if (stalled) return; // accepted, never answered
    const upstream = net.connect(targetPort, targetHost);
    track(upstream);
    // Forward only while not stalled; data arriving afterwards is dropped.
    client.on("data", (d) => {
      if (!stalled) upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!stalled) client.write(d);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    stall() {
      stalled = true;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
