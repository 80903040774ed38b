import test from 'ava';
import { SatchelError } from '../proto/index.ts';
import { runBench } from './cli.ts';

// Refused before anything starts: BAD_REQUEST naming the flag (main.ts prints it with the usage, exit 2).
for (const [args, flag] of [
  [['--speed', '0'], '--speed'],
  [['--nodes', '0'], '--nodes'],
  [['--jobs', 'many'], '--jobs'],
  [['--in-flight', '64'], '--in-flight'],
  [['--metadata', '0'], '--metadata'],
  [['--span-s', '0'], '--span-s'],
  [['--nodes-per-connection', '65'], '--nodes-per-connection'],
  [['--span-s', '100', '--trace', '/dev/null'], '--span-s'],
  [['--trace', '/nonexistent/trace.csv'], '--trace'],
  [['--bogus'], 'bogus'],
] as const) {
  test(`bench scale ${args.join(' ')} is refused`, async (t) => {
    const error = await t.throwsAsync(runBench(['scale', ...args]));
    t.true(error instanceof SatchelError);
    t.is((error as SatchelError).code, 'BAD_REQUEST');
    t.true(error!.message.includes(flag), error!.message);
  });
}
