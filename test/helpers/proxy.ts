/**
 * A TCP proxy in front of a tracker, to lose answers on purpose:
 *
 *   const proxy = await startProxy(t, primary);
 *   proxy.dropAnswersAfter('create_group team');  // from that request on, nothing comes back
 *   ... the tracker applies the write, the client waits for its answer ...
 *   await proxy.close();                           // the client's connection drops; nothing listens any more
 *   proxy.setDown(true);                           // or: connections dropped at once, as a tracker that is down
 *   proxy.setDown(false);                          // ... and back
 *
 * Closed in the test's teardown.
 */
import net from 'node:net';
import type { TeardownHost } from './tracker.js';

export interface Proxy {
  port: number;
  /** `127.0.0.1:<port>` */
  address: string;
  /** Bytes clients sent so far (latin1 text, frames included), for waiting on a request. */
  sent(): string;
  /** From the first client chunk containing `text` on, the tracker's bytes are no longer passed back. */
  dropAnswersAfter(text: string): void;
  /** Stops listening and closes every connection (both sides). */
  close(): Promise<void>;
  /**
   * While down, open connections are closed and new ones are accepted and
   * closed at once (counted by `accepted()`): the tracker looks gone, at the
   * same address, until `setDown(false)`.
   */
  setDown(down: boolean): void;
  /** Connections accepted so far, dropped ones included. */
  accepted(): number;
}

export async function startProxy(t: TeardownHost, target: { port: number; host?: string }): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  let sent = '';
  let trigger: string | undefined;
  let dropping = false;
  let down = false;
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ port: target.port, host: target.host ?? '127.0.0.1' });
    sockets.add(client);
    sockets.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      sent += text;
      if (trigger !== undefined && text.includes(trigger)) dropping = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!dropping) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
    return closed;
  };
  t.teardown(close);
  return {
    port,
    address: `127.0.0.1:${port}`,
    sent: () => sent,
    dropAnswersAfter(text) {
      trigger = text;
    },
    close,
    setDown(value) {
      down = value;
      if (down) for (const s of sockets) s.destroy();
    },
    accepted: () => accepted,
  };
}
