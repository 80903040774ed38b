import { SatchelError } from '../proto/index.ts';

export async function runBench(args: string[]): Promise<void> {
  throw new SatchelError('BAD_REQUEST', `unknown benchmark ${JSON.stringify(args[0] ?? '')}`);
}
