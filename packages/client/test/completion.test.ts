import t from 'tap';
import { complete, defaultCommandTable, KnownNames } from '@tracker-cluster/client';

const table = defaultCommandTable();

t.test('the first word completes to command names', async (t) => {
  const known = new KnownNames();
  t.same(complete('logi', table, known), [['login '], 'logi']);
  t.same(complete('LOGO', table, known), [['logout '], 'LOGO'], 'case-insensitive');
  t.same(complete('list_', table, known), [['list_files', 'list_groups', 'list_members', 'list_requests'], 'list_']);
  t.same(complete('zz', table, known), [[], 'zz']);
  t.same(complete('help acc', table, known), [['accept_request '], 'acc'], 'help <command>');
});

t.test('group and user names seen complete where the command takes them', async (t) => {
  const known = new KnownNames();
  known.learnFromReply('list_groups', 'OK 2\nclimbers owner=alice members=2\n"base camp" owner=bob members=1');
  known.learnFromEvent('EVENT join_request climbers carol');
  known.learnFromEvent('EVENT file_shared team "my file" dave');
  known.learnFromReply('create_group nope', 'ERR GROUP_EXISTS exists');
  t.same([...known.groups].sort(), ['base camp', 'climbers', 'team']);
  t.same([...known.users].sort(), ['alice', 'bob', 'carol', 'dave']);
  t.same(complete('list_members cl', table, known), [['climbers '], 'cl']);
  t.same(complete('list_members ', table, known), [['"base camp"', 'climbers', 'team'], '']);
  t.same(complete('list_members "ba', table, known), [['"base camp" '], '"ba'], 'quoted names');
  t.same(complete('accept_request climbers ca', table, known), [['carol '], 'ca'], 'the second argument is a user');
  t.same(complete('ping x', table, known), [[], 'x'], 'no arguments to complete');
  t.same(complete('frob x', table, known), [[], 'x']);
});
