import t from 'tap';
import { counted } from '@tracker-cluster/protocol';

t.test('counted: the noun agrees with the count', async (t) => {
  t.equal(counted(1, 'file'), '1 file');
  t.equal(counted(0, 'file'), '0 files');
  t.equal(counted(2, 'file'), '2 files');
  t.equal(counted(1, 'hash', 'hashes'), '1 hash');
  t.equal(counted(3, 'hash', 'hashes'), '3 hashes');
});
