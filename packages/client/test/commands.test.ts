import t from 'tap';
import { classifyLine, COMMANDS, findCommand, formatCommandHelp, formatHelp, usage } from '@tracker-cluster/client';

/** Every command of PROTOCOL.md §3, with its arguments. */
const PROTOCOL_COMMANDS: Record<string, string> = {
  ping: '',
  status: '',
  create_user: '<user> <password>',
  login: '<user> <password>',
  logout: '',
  whoami: '',
  create_group: '<group>',
  join_group: '<group>',
  leave_group: '<group>',
  list_requests: '<group>',
  accept_request: '<group> <user>',
  reject_request: '<group> <user>',
  list_groups: '',
  list_members: '<group>',
  // peer: the table shows the client's own form; the 7-argument tracker form is still sent as written
  upload_file: '<path> <group> [piece_size]',
  list_files: '<group>',
  file_peers: '<group> <file>',
  stop_share: '<group> <file>',
};

t.test('the table covers every protocol command, with its arguments', async (t) => {
  for (const [name, args] of Object.entries(PROTOCOL_COMMANDS)) {
    const spec = findCommand(name);
    t.ok(spec, `${name} is in the table`);
    t.equal(spec?.args, args, `${name} arguments`);
    t.not(spec?.auth, 'local', `${name} goes to the tracker`);
  }
  const remote = COMMANDS.filter((c) => c.auth !== 'local').map((c) => c.name);
  // peer: download_file needs a login and membership, and is run by the client (issue 5)
  t.same(remote.sort(), [...Object.keys(PROTOCOL_COMMANDS), 'download_file'].sort(), 'and nothing else goes to the tracker');
  t.same(
    COMMANDS.filter((c) => c.auth === 'local').map((c) => c.name),
    ['help', 'quit', 'show_downloads', 'wait_downloads'],
  );
  t.equal(findCommand('exit')?.name, 'quit', 'exit is an alias of quit');
  t.equal(findCommand('LOGIN')?.name, 'login', 'names are case-insensitive');
  t.equal(findCommand('nope'), undefined);
});

t.test('help lists every command with its usage', async (t) => {
  const help = formatHelp();
  for (const spec of COMMANDS) {
    t.match(help, usage(spec), `help shows ${usage(spec)}`);
  }
  t.match(help, /exit/);
  t.match(formatCommandHelp('login') ?? '', /^usage: login <user> <password>\n/);
  t.match(formatCommandHelp('ACCEPT_REQUEST') ?? '', /owner only/);
  t.match(formatCommandHelp('list_members') ?? '', /members only/);
  t.match(formatCommandHelp('ping') ?? '', /no login needed/);
  t.match(formatCommandHelp('exit') ?? '', /usage: quit/);
  t.equal(formatCommandHelp('nope'), undefined);
});

t.test('classifyLine: local commands, the rest goes to the tracker as typed', async (t) => {
  t.same(classifyLine(''), { kind: 'skip' });
  t.same(classifyLine('   '), { kind: 'skip' });
  t.same(classifyLine('help'), { kind: 'help', topic: undefined });
  t.same(classifyLine(' HELP login '), { kind: 'help', topic: 'login' });
  t.same(classifyLine('quit'), { kind: 'quit' });
  t.same(classifyLine('Exit'), { kind: 'quit' });
  t.same(classifyLine('  login alice "pw 1" '), { kind: 'remote', line: 'login alice "pw 1"', command: 'login' });
  t.same(classifyLine('WHOAMI'), { kind: 'remote', line: 'WHOAMI', command: 'whoami' });
  t.same(classifyLine('frobnicate x'), { kind: 'remote', line: 'frobnicate x', command: 'frobnicate' });
  t.same(
    classifyLine('login "unterminated'),
    { kind: 'remote', line: 'login "unterminated', command: 'login' },
    'bad quoting is left to the tracker',
  );
});
