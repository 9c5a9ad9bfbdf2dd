import { AddressError, formatHostPort, parseHostPort, parseResponse, parseRow, tokenize } from '@tracker-cluster/protocol';
import type { HostPort } from '@tracker-cluster/protocol';

/** The tracker's `file_peers` answer (PROTOCOL.md §3), parsed. */
export interface FilePeers {
  file: string;
  size: number;
  sha256: string;
  pieceSize: number;
  hashes: string[];
  peers: { user: string; address: HostPort; text: string }[];
}

/** How many listed peers are not this client itself (`self`: its announced `host:port`): those a download can use. */
export function otherPeerCount(list: FilePeers, self: string | undefined): number {
  return list.peers.filter((peer) => formatHostPort(peer.address) !== self).length;
}

/** Parses a `file_peers` answer; undefined for an `ERR` or anything malformed. */
export function parseFilePeers(payload: string): FilePeers | undefined {
  const response = parseResponse(payload);
  if (!response.ok) return undefined;
  try {
    const head = parseRow(response.text);
    const size = Number(head.fields.size);
    const pieceSize = Number(head.fields.piece_size);
    const sha256 = head.fields.sha256 ?? '';
    const pieces = Number(head.fields.pieces);
    if (!Number.isSafeInteger(size) || !Number.isSafeInteger(pieceSize) || pieceSize < 1 || !/^[0-9a-f]{64}$/.test(sha256)) return undefined;
    const [hashLine, ...peerLines] = response.lines;
    if (!hashLine?.startsWith('hashes ')) return undefined;
    const list = hashLine.slice('hashes '.length);
    const hashes = list === '-' ? [] : list.split(',');
    if (hashes.length !== pieces || !hashes.every((h) => /^[0-9a-f]{64}$/.test(h))) return undefined;
    const peers: FilePeers['peers'] = [];
    for (const line of peerLines) {
      const words = tokenize(line);
      if (words[0] !== 'peer' || words.length !== 3) continue;
      let address: HostPort;
      try {
        address = parseHostPort(words[2] as string);
      } catch (error) {
        // A peer stored before the tracker checked addresses as strictly as this client: useless, not the whole answer.
        if (error instanceof AddressError) continue;
        throw error;
      }
      peers.push({ user: words[1] as string, address, text: words[2] as string });
    }
    return { file: head.name, size, sha256, pieceSize, hashes, peers };
  } catch {
    return undefined;
  }
}
