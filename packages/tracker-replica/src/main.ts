import { runTracker } from '@tracker-cluster/tracker-cli';

await runTracker('replica', process.argv.slice(2));
