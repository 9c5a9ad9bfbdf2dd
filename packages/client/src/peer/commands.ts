import type { CommandSpec } from '../command-spec.js';

/**
 * The file-sharing commands the client runs itself (docs/client.md "File
 * sharing"). `upload_file` with 7 arguments is still sent to the tracker as
 * written (PROTOCOL.md §3); with 2 or 3 it is the client's own form.
 */
export const PEER_COMMANDS: readonly CommandSpec[] = [
  {
    name: 'upload_file',
    args: '<path> <group> [piece_size]',
    summary: 'share a file from disk with a group: hash it, register it, serve its pieces (piece size default 512k)',
    auth: 'member',
    examples: ['upload_file notes.txt climbers', 'upload_file "big video.mp4" climbers 1m'],
  },
  {
    name: 'download_file',
    args: '<group> <file> <dest_dir>',
    summary: 'download a shared file from every peer that has it, in the background',
    auth: 'member',
    examples: ['download_file climbers notes.txt ~/Downloads'],
  },
  { name: 'show_downloads', args: '', summary: 'list downloads: [D] downloading, [C] complete, [F] failed, [Q] queued', auth: 'local', examples: ['show_downloads'] },
  { name: 'wait_downloads', args: '', summary: 'wait until every download has ended, then list them (for scripts)', auth: 'local', examples: ['wait_downloads'] },
];
