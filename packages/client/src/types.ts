import type { SessionId } from '@tracker-cluster/protocol';

/** A response frame, decoded: the session the client should use from now on, and the UTF-8 payload. */
export interface Reply {
  session: SessionId;
  payload: string;
}

/** An `EVENT …` frame (PROTOCOL.md §4): the session it is for, and the payload including the `EVENT ` prefix. */
export interface TrackerEvent {
  session: SessionId;
  payload: string;
}
