// A TCP proxy in front of PostgreSQL that a scenario controls: `cut()` partitions the processes
// behind it from the database, `heal()` ends the partition.
//
// A cut is a black hole, not a refusal: bytes on open connections stop flowing and new
// connections are accepted but never forwarded, as when a network path dies (a refused
// connection would be a kinder failure than real partitions offer: clients learn at once).
// On heal the connections held through the cut are reset (after a long partition TCP
// keepalives or timeouts would have ended them) and new ones flow normally.
import net from 'node:net';

export interface Proxy {
  readonly port: number;
  readonly cutActive: boolean;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startProxy(target: { host: string; port: number }): Promise<Proxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket | undefined }>();
  let cut = false;

  const forward = (pair: { client: net.Socket; upstream: net.Socket | undefined }) => {
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    const end = () => {
      pair.client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    upstream.on('error', end);
    upstream.on('close', end);
    pair.client.on('close', end);
    pair.client.on('data', (chunk: Buffer) => {
      if (!cut) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!cut) pair.client.write(chunk);
    });
  };

  const server = net.createServer((client) => {
    const pair = { client, upstream: undefined as net.Socket | undefined };
    pairs.add(pair);
    client.on('error', () => {
      client.destroy();
      pair.upstream?.destroy();
      pairs.delete(pair);
    });
    // accepted during a cut: held, never forwarded (reset at heal)
    if (!cut) forward(pair);
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });

  return {
    port,
    get cutActive() {
      return cut;
    },
    cut: () => {
      cut = true;
    },
    heal: () => {
      if (!cut) return;
      cut = false;
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.upstream?.destroy();
        pairs.delete(pair);
      }
    },
    close: async () => {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream?.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
