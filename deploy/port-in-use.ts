/**
 * A port someone else holds, said in words a user can act on: the roles turn EADDRINUSE into a PortInUseError,
 * the CLI adds the flag that picks another port (each command names its own flags), and LocalCluster finds it
 * again in the line a failed child printed, so `satchel up` can name its own flag.
 */
import { SatchelError } from '../proto/index.ts';

export class PortInUseError extends SatchelError {
  constructor(
    readonly port: number,
    /** Whose port: 'controller', 'console', 'metadata server', 'storage node', 'metrics endpoint'. */
    readonly owner: string,
    options?: { cause?: unknown },
  ) {
    super('UNAVAILABLE', `port ${port} is in use (the ${owner}'s)`, options);
    this.name = 'PortInUseError';
  }

  /** Plain `instanceof` (SatchelError's brand check would take any SatchelError for one). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class instanceof was asked about (a subclass too)
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  /**
   * `error` as a PortInUseError when it is an EADDRINUSE (a listen's own error, or one wrapped by gRPC, whose
   * message carries it), with the owner looked up by port among `ports`; any other error unchanged.
   */
  static from(error: unknown, ports: [port: number | undefined, owner: string][]): unknown {
    const text = messages(error);
    if (!text.includes('EADDRINUSE')) return error;
    const named = Number((error as { port?: unknown }).port ?? /EADDRINUSE[^\n]*?:(\d+)\b/.exec(text)?.[1]);
    const asked = ports.filter(([port]) => port !== undefined && port !== 0);
    const match = asked.find(([port]) => port === named) ?? (asked.length === 1 ? asked[0] : undefined);
    return match === undefined ? error : new PortInUseError(match[0]!, match[1], { cause: error });
  }

  /** The error again from a line a role printed (`satchel: port 7070 is in use (the controller's): …`). */
  static parse(text: string): PortInUseError | undefined {
    const match = /port (\d+) is in use \(the (.+?)'s\)/.exec(text);
    return match === null ? undefined : new PortInUseError(Number(match[1]), match[2]!);
  }

  /** The message with the flag that picks another port, when `flags` has one for the owner. */
  withFlag(flags: Record<string, string>): string {
    const flag = flags[this.owner];
    return flag === undefined ? this.message : `${this.message}: pick another with ${flag} P (0 = any free port)`;
  }
}

/** The messages of an error and its causes (and of an AggregateError's errors), one a line. */
function messages(error: unknown, depth = 0): string {
  if (!(error instanceof Error) || depth > 5) return String(error);
  const inner = [error.cause, ...(error instanceof AggregateError ? error.errors : [])].filter((e) => e !== undefined);
  return [`${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`, ...inner.map((e) => messages(e, depth + 1))].join('\n');
}
