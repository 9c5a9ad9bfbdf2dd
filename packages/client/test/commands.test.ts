import t from 'tap';
import { classifyLine, COMMANDS, defaultCommandTable, findCommand, formatCommandHelp, formatHelp, usage } from '@tracker-cluster/client';

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
    ['show_downloads', 'wait_downloads', 'help', 'quit'],
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
  const local = (line: string): unknown => {
    const a = classifyLine(line);
    return a.kind === 'local' ? { name: a.spec.name, args: a.args } : a;
  };
  t.same(local('help'), { name: 'help', args: [] });
  t.same(local(' HELP login '), { name: 'help', args: ['login'] });
  t.same(local('quit'), { name: 'quit', args: [] });
  t.same(local('Exit'), { name: 'quit', args: [] });
  t.same(classifyLine('  login alice "pw 1" '), { kind: 'remote', line: 'login alice "pw 1"', command: 'login' });
  t.same(classifyLine('WHOAMI'), { kind: 'remote', line: 'WHOAMI', command: 'whoami' });
  t.same(classifyLine('frobnicate x'), { kind: 'remote', line: 'frobnicate x', command: 'frobnicate' });
  t.same(
    classifyLine('login "unterminated'),
    { kind: 'remote', line: 'login "unterminated', command: 'login' },
    'bad quoting is left to the tracker',
  );
});

t.test('help lists the commands by topic, file sharing\'s with the files, help and quit last', async (t) => {
  const expected = [
    'ping', 'status',
    'create_user', 'login', 'logout', 'whoami',
    'create_group', 'join_group', 'leave_group', 'list_requests', 'accept_request', 'reject_request', 'list_groups', 'list_members',
    'upload_file', 'download_file', 'show_downloads', 'wait_downloads', 'list_files', 'file_peers', 'stop_share',
    'help', 'quit',
  ];
  t.same(COMMANDS.map((c) => c.name), expected);
  const listed = formatHelp()
    .split('\n')
    .slice(1, -1)
    .map((line) => /^ {2}(\w+)/.exec(line)?.[1])
    .filter((name) => name !== undefined);
  t.same(listed, expected, 'in that order in help');
});

t.test('help <command> shows usage and examples', async (t) => {
  t.match(formatCommandHelp('accept_request'), /^usage: accept_request <group> <user>\n[^]*examples:\n {2}accept_request climbers bob$/);
  for (const spec of COMMANDS) t.ok((spec.examples ?? []).length > 0, `${spec.name} has an example`);
});

t.test('CommandTable: a client-side command can be registered, also over a tracker command', async (t) => {
  const table = defaultCommandTable();
  table.register({ name: 'upload_file', args: '<group> <path>', summary: 'share a local file', auth: 'local', run: () => ({ ok: true, text: 'shared' }) });
  table.register({ name: 'show_downloads', args: '', summary: 'list downloads', auth: 'local', aliases: ['sd'], run: () => ({ ok: true }) });
  t.equal(table.find('UPLOAD_FILE')?.args, '<group> <path>', 'replaced');
  t.equal(table.find('sd')?.name, 'show_downloads');
  t.equal(table.all().findIndex((s) => s.name === 'upload_file'), COMMANDS.findIndex((s) => s.name === 'upload_file'), 'keeps its place in help');
  const action = classifyLine('upload_file team "my notes.txt"', table);
  t.equal(action.kind, 'local');
  if (action.kind === 'local') t.same(action.args, ['team', 'my notes.txt']);
  t.equal(classifyLine('upload_file team x').kind, 'remote', 'the default table is not changed');
  t.match(formatHelp(table), /show_downloads +list downloads \(also: sd\)/);
});
