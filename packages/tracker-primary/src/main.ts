import { runTracker } from '@tracker-cluster/tracker-cli';

await runTracker('primary', process.argv.slice(2));
