import { ok } from '@tracker-cluster/protocol';
import type { Command } from './command.js';

export const ping: Command = {
  name: 'ping',
  auth: false,
  args: [],
  summary: 'liveness check',
  run: () => ({ payload: ok('PONG') }),
};

export const status: Command = {
  name: 'status',
  auth: false,
  args: [],
  summary: 'role, epoch, seq, log_hash and replication state of this tracker',
  run: ({ services }) => {
    const fields = services.statusFields();
    return { payload: ok(Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(' ')) };
  },
};
