import { parseResponse } from '@tracker-cluster/protocol';
import type { TrackerAddress } from './address.js';
import { classifyLine, formatCommandHelp, formatHelp } from './commands.js';
import type { ConnectionHandlers, TrackerConnection } from './connection.js';
import type { ConnectionLostError } from './errors.js';
import { formatUnknownHelpTopic } from './format.js';
import { applyReply, INITIAL_STATE } from './state.js';
import type { ClientState } from './state.js';
import type { Reply, TrackerEvent } from './types.js';

/** Opens a connection to some tracker (e.g. `connectFirst` over the configured list). */
export type Connector = (handlers: ConnectionHandlers) => Promise<TrackerConnection>;

/** What running one line gave. */
export type Outcome =
  | { kind: 'skip' }
  | { kind: 'quit' }
  /** Handled by the client (`help`); `ok` false for a bad request such as help on an unknown command. */
  | { kind: 'local'; text: string; ok: boolean }
  /** The tracker's answer. */
  | { kind: 'reply'; command: string; reply: Reply; ok: boolean };

export interface RunnerHooks {
  /** An `EVENT` frame arrived. */
  onEvent?: (event: TrackerEvent) => void;
  /** The connection dropped while no command was waiting for it; the next command reconnects. */
  onIdleDisconnect?: (error: ConnectionLostError) => void;
  /** A new connection was opened (also the first one). */
  onConnect?: (connection: TrackerConnection) => void;
}

/**
 * Runs command lines for both the prompt and scripts: local commands here,
 * the rest sent to the tracker with the current session, whose answer then
 * updates the session state. Owns the connection. A connection that drops
 * between commands is reopened (through the connector, so the tracker list
 * is tried again) for the next one, keeping the session — a TCP disconnect
 * does not end a session. A drop while a command waits for its answer is
 * thrown to the caller as a `ConnectionLostError`: whether the command took
 * effect is unknown.
 */
export class Runner {
  private current: TrackerConnection | undefined;
  private stateValue: ClientState = INITIAL_STATE;
  private readonly connector: Connector;
  /** True while a command waits for its answer. */
  private inFlight = false;
  hooks: RunnerHooks;

  constructor(connector: Connector, hooks: RunnerHooks = {}) {
    this.connector = connector;
    this.hooks = hooks;
  }

  get state(): ClientState {
    return this.stateValue;
  }

  /** The tracker of the open connection, if any. */
  get address(): TrackerAddress | undefined {
    return this.current?.address;
  }

  get connection(): TrackerConnection | undefined {
    return this.current;
  }

  /** Opens the connection now if there is none (the first command would otherwise do it). */
  async connect(): Promise<TrackerConnection> {
    if (this.current?.isOpen) return this.current;
    const connection = await this.connector({
      onEvent: (event) => this.hooks.onEvent?.(event),
      onClose: (error) => {
        if (this.current === connection) this.current = undefined;
        if (error !== undefined && !this.inFlight) this.hooks.onIdleDisconnect?.(error);
      },
    });
    this.current = connection;
    this.hooks.onConnect?.(connection);
    return connection;
  }

  /** Runs one line. Throws `UnreachableError` / `ConnectionLostError` when no tracker can answer it. */
  async execute(line: string): Promise<Outcome> {
    const action = classifyLine(line);
    switch (action.kind) {
      case 'skip':
      case 'quit':
        return action;
      case 'help': {
        if (action.topic === undefined) return { kind: 'local', text: formatHelp(), ok: true };
        const text = formatCommandHelp(action.topic);
        return text === undefined
          ? { kind: 'local', text: formatUnknownHelpTopic(action.topic), ok: false }
          : { kind: 'local', text, ok: true };
      }
      case 'remote': {
        const connection = await this.connect();
        let reply: Reply;
        this.inFlight = true;
        try {
          reply = await connection.request(this.stateValue.session, action.line);
        } finally {
          this.inFlight = false;
        }
        this.stateValue = applyReply(this.stateValue, action.command, reply);
        return { kind: 'reply', command: action.command, reply, ok: parseResponse(reply.payload).ok };
      }
    }
  }

  /** Closes the connection (without logging out). */
  async close(): Promise<void> {
    const connection = this.current;
    this.current = undefined;
    await connection?.close();
  }
}
