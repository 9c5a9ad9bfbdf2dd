import { parseResponse, tokenize } from '@tracker-cluster/protocol';
import { classifyLine } from '../commands.js';
import type { JsonRow } from '../format.js';
import { Runner } from '../runner.js';
import type { Outcome, RunnerHooks, RunnerOptions } from '../runner.js';
import { sessionEndedShareNote } from './format.js';
import type { PeerOptions } from './options.js';
import { PeerNode } from './peer-node.js';

/**
 * The client's `Runner` with file sharing: runs the peer commands itself
 * (`upload_file <path> <group>`, `download_file`, `show_downloads`,
 * `wait_downloads`) and tells the peer side about `login` (re-announce the
 * user's shares), the end of the session (pause sharing), `stop_share` and
 * `leave_group` (end sharing and downloading in that group).
 * Everything else is the plain `Runner`'s.
 */
export class PeerRunner extends Runner {
  readonly peer: PeerNode;

  constructor(runnerOptions: RunnerOptions, options: PeerOptions, hooks: RunnerHooks = {}) {
    super(runnerOptions, hooks);
    this.peer = new PeerNode(
      options,
      {
        // Through the runner: the session, a request id, failover.
        request: async (line, signal) => (await this.request(line, signal)).payload,
        user: () => (this.state.session !== 0n ? this.state.user : undefined),
      },
      // Client-side notices are shown like events: `[event] download_complete <group> <file>`.
      (text) => this.hooks.onEvent?.({ session: this.state.session, payload: `EVENT ${text}` }),
    );
  }

  override async execute(line: string, signal?: AbortSignal): Promise<Outcome> {
    const action = classifyLine(line, this.commands);
    if (action.kind !== 'remote') return super.execute(line, signal);
    let words: string[];
    try {
      words = tokenize(action.line);
    } catch {
      return super.execute(line, signal);
    }
    const { command } = action;
    const arg = (i: number): string => words[i] as string;
    switch (command) {
      case 'upload_file':
        if (words.length === 3 || words.length === 4) return this.answer(command, await this.peer.uploadFile(arg(1), arg(2), words[3], signal));
        // Seven arguments: the tracker's own form, sent as written. Any other count is the user's form gone wrong.
        if (words.length !== 8) return this.answer(command, `ERR BAD_REQUEST usage: upload_file <path> <group> [piece_size]`);
        break;
      case 'download_file':
        if (words.length !== 4) return this.answer(command, 'ERR BAD_REQUEST usage: download_file <group> <file> <dest_dir>');
        return this.answer(command, await this.peer.downloadFile(arg(1), arg(2), arg(3), signal));
      case 'show_downloads': {
        const listing = this.peer.showDownloads();
        return this.answer(command, listing.payload, listing.rows);
      }
      case 'wait_downloads': {
        const listing = await this.peer.waitDownloads(signal);
        return this.answer(command, listing.payload, listing.rows);
      }
      case 'stop_share': {
        const outcome = await this.tracked(line, signal);
        if (outcome.kind === 'reply' && words.length === 3) {
          const response = parseResponse(outcome.reply.payload);
          if (response.ok || response.code === 'NO_SUCH_FILE') {
            const lines = await this.peer.stoppedSharing(arg(1), arg(2));
            if (lines.length > 0) return { ...outcome, reply: { ...outcome.reply, payload: [outcome.reply.payload, ...lines].join('\n') } };
          }
        }
        return outcome;
      }
      case 'leave_group': {
        // The tracker ends the leaver's shares in the group (PROTOCOL.md §3): stop serving and downloading them.
        const outcome = await this.tracked(line, signal);
        if (outcome.kind === 'reply' && outcome.ok && words.length === 2) {
          const lines = await this.peer.leftGroup(arg(1));
          if (lines.length > 0) return { ...outcome, reply: { ...outcome.reply, payload: [outcome.reply.payload, ...lines].join('\n') } };
        }
        return outcome;
      }
      case 'login': {
        const outcome = await this.tracked(line, signal);
        const user = this.state.user;
        if (outcome.kind === 'reply' && outcome.ok && user !== undefined) {
          const lines = await this.peer.loggedIn(user, signal);
          if (lines.length > 0) return { ...outcome, reply: { ...outcome.reply, payload: [outcome.reply.payload, ...lines].join('\n') } };
        }
        return outcome;
      }
    }
    return this.tracked(line, signal);
  }

  /**
   * The session ended at the tracker (expired, or logged out elsewhere),
   * found out by any request — a command, a download's, or the `--serve`
   * keep-alive: the tracker ended its shares, so stop serving them, and say
   * so, one line per share.
   */
  protected override sessionEnded(user: string | undefined): void {
    super.sessionEnded(user);
    const served = this.peer.table.list();
    for (const s of served) this.hooks.onNotice?.(sessionEndedShareNote(s.group, s.file));
    void this.peer.loggedOut().catch(() => undefined);
  }

  /** Runs a tracker command; when it ends the session (logout, expiry), sharing pauses. */
  private async tracked(line: string, signal: AbortSignal | undefined): Promise<Outcome> {
    const before = this.state.session;
    const outcome = await super.execute(line, signal);
    if (before !== 0n && this.state.session === 0n) await this.peer.loggedOut();
    return outcome;
  }

  private answer(command: string, payload: string, rows?: readonly JsonRow[]): Outcome {
    const outcome: Outcome = { kind: 'reply', command, reply: { session: this.state.session, payload }, ok: parseResponse(payload).ok };
    return rows === undefined ? outcome : { ...outcome, rows };
  }
}
