import { parseSessionId } from '@tracker-cluster/protocol';
import type { DomainEvent } from '../state/apply.js';
import type { StateStore } from '../store/store.js';

/** What the hub needs of a connection: somewhere to send an event frame. */
export interface EventSink {
  sendEvent(session: bigint, payload: string): void;
}

/**
 * Which open connections last presented which session (PROTOCOL.md §4: a
 * session's events go to the connections that last presented it). Each
 * connection counts for one session at a time: its most recent.
 */
export class SessionHub {
  private readonly bySession = new Map<string, Set<EventSink>>();
  private readonly byConnection = new Map<EventSink, string>();

  present(sink: EventSink, sessionKey: string): void {
    const previous = this.byConnection.get(sink);
    if (previous === sessionKey) return;
    if (previous !== undefined) this.forgetFrom(previous, sink);
    this.byConnection.set(sink, sessionKey);
    let sinks = this.bySession.get(sessionKey);
    if (!sinks) {
      sinks = new Set();
      this.bySession.set(sessionKey, sinks);
    }
    sinks.add(sink);
  }

  remove(sink: EventSink): void {
    const key = this.byConnection.get(sink);
    if (key === undefined) return;
    this.byConnection.delete(sink);
    this.forgetFrom(key, sink);
  }

  /** Sends each event to every live session of its users, on the connections that last presented them. */
  deliver(events: readonly DomainEvent[], store: StateStore, now: number): void {
    if (events.length === 0 || this.bySession.size === 0) return;
    for (const event of events) {
      const payload = `EVENT ${event.text}`;
      for (const user of event.users) {
        for (const key of store.liveSessionsOf(user, now)) {
          const sinks = this.bySession.get(key);
          if (!sinks) continue;
          const id = parseSessionId(key) as bigint;
          for (const sink of sinks) sink.sendEvent(id, payload);
        }
      }
    }
  }

  private forgetFrom(key: string, sink: EventSink): void {
    const sinks = this.bySession.get(key);
    if (!sinks) return;
    sinks.delete(sink);
    if (sinks.size === 0) this.bySession.delete(key);
  }
}
