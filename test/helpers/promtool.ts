/**
 * Checking Prometheus text with `promtool check metrics` (Debian's prometheus package; .ci/run installs it).
 * promtool missing is a failure of the test environment, not something to skip over.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'];

/** promtool's exit code and output for `text`; throws when promtool is not installed. */
export function promtoolCheck(text: string): { code: number | null; output: string } {
  const promtool = PROMTOOL.find((path) => existsSync(path));
  if (promtool === undefined) {
    throw new Error(`promtool not found at ${PROMTOOL.join(' or ')}: install Debian's prometheus package (.ci/run does)`);
  }
  const checked = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { code: checked.status, output: `${checked.stdout}${checked.stderr}` };
}

/** The value of one sample line (`name{labels} value`), or undefined when the series is not there. */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
