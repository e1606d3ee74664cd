import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";

/**
 * A PostgreSQL front that speaks TLS with a self-signed certificate (as Heroku Postgres does, seen from
 * a client without its CA) and forwards the decrypted stream to the plain local server. The shared
 * server has `ssl = off`, and the tests must not reconfigure it. It answers a client's SSLRequest
 * with `S` and a TLS handshake, and passes a plain startup through untouched; `tlsSessions` counts the
 * connections that arrived over TLS.
 */
export interface PgTlsProxy {
  port: number;
  tlsSessions(): number;
  plainSessions(): number;
  close(): Promise<void>;
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/** A throw-away self-signed certificate for CN=localhost (openssl is on every machine of the project). */
function selfSigned(): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "ctw-tls-"));
  try {
    const [key, cert] = [path.join(dir, "key.pem"), path.join(dir, "cert.pem")];
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
      {
        stdio: "ignore",
      },
    );
    return { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function startPgTlsProxy(targetHost = "127.0.0.1", targetPort = 5432): Promise<PgTlsProxy> {
  const credentials = selfSigned();
  const sockets = new Set<net.Socket>();
  let tlsCount = 0;
  let plainCount = 0;
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  const relay = (client: net.Socket, first: Buffer | null) => {
    const upstream = net.connect(targetPort, targetHost);
    track(upstream);
    if (first) upstream.write(first);
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    client.once("data", (first: Buffer) => {
      client.pause();
      if (!first.equals(SSL_REQUEST)) {
        plainCount += 1;
        relay(client, first);
        client.resume();
        return;
      }
      client.write("S");
      const secure = new tls.TLSSocket(client, { isServer: true, ...credentials });
      track(secure);
      secure.once("secure", () => {
        tlsCount += 1;
      });
      relay(secure, null);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    tlsSessions: () => tlsCount,
    plainSessions: () => plainCount,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
