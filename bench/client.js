// A minimal request/response client for preparing benchmark state
// (create_user, login, create_group). Not used on the measured path.
import net from 'node:net';
import { encodeFrame, FrameDecoder, isEvent, parseResponse } from '@tracker-cluster/protocol';

export class BenchClient {
  /** @param {net.Socket} socket */
  constructor(socket) {
    this.socket = socket;
    this.decoder = new FrameDecoder();
    /** @type {{resolve: Function, reject: Function}[]} */
    this.waiting = [];
    this.closedError = undefined;
    socket.on('data', (chunk) => {
      let frames;
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        this.fail(err);
        return;
      }
      for (const frame of frames) {
        const text = frame.payload.toString('utf8');
        if (isEvent(text)) continue;
        const w = this.waiting.shift();
        if (w) w.resolve({ session: frame.session, text, response: parseResponse(text) });
      }
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static connect(host, port, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', reject);
        resolve(new BenchClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  fail(err) {
    if (this.closedError) return;
    this.closedError = err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  /** Sends one request; resolves with { session, text, response }. */
  request(line, session = 0n) {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(encodeFrame(session, line));
    });
  }

  /** Like request(), but throws unless the answer is OK. */
  async ok(line, session = 0n) {
    const r = await this.request(line, session);
    if (!r.response.ok) throw new Error(`"${line.split(' ')[0]}" failed: ${r.text}`);
    return r;
  }

  close() {
    this.socket.destroy();
  }
}
