/**
 * Fuzzes RespParser in-process against the reference model in test/helpers/resp-fuzz.ts: streams of valid
 * multibulk and inline commands, pipelined, mixed with mutated, broken and random pieces (bad lengths and counts,
 * missing CRLF, non-digits, bulks over the limit, RESP types clients must not send, huge declared lengths), cut
 * into random chunks, with the limits sometimes changed between commands as AUTH changes them. The parser must
 * give exactly the model's commands, the model's protocol error (its text) and nothing after it, never throw, and
 * never allocate much more than it was sent (a declared length alone allocates nothing of its size).
 *
 * `respParserFuzz` registers the tests; the unit tier runs it with a few thousand inputs (resp-parser.test.ts),
 * the e2e tier with 1,000,000 (resp-parser-fuzz.test.ts). SATCHEL_FUZZ_SEED replays a run (the seed is printed).
 */
import test from 'ava';
import { fuzzSeed, Rng } from '../test/helpers/fuzz.ts';
import { Growing, modelParse, multibulk, RespGenerator, type RespLimits, respChunks } from '../test/helpers/resp-fuzz.ts';
import { type RespCommand, type RespOversized, RespParser, type RespProtocolError } from './resp-parser.ts';

const MAX_FAILURES = 10;
/** What the parser may allocate up front for a bulk spanning chunks, before its bytes arrive. */
const FIRST_ALLOCATION = 64 * 1024;
const DEFAULT_MAX_ARGS = 1024 * 1024;

function randomLimits(rng: Rng): RespLimits {
  return {
    maxBulkBytes: rng.pick([0, 1, 16, 100, 4096, 4096, 4096, 65_536, 65_536, 65_536, 1 << 20]),
    maxArgs: rng.pick([1, 2, 3, 10, 64, DEFAULT_MAX_ARGS, DEFAULT_MAX_ARGS, DEFAULT_MAX_ARGS, DEFAULT_MAX_ARGS, DEFAULT_MAX_ARGS]),
    maxInlineBytes: rng.pick([4, 16, 64, 1024, 65_536, 65_536, 65_536, 65_536, 65_536]),
  };
}

function show(b: Buffer, max = 200): string {
  return JSON.stringify(b.toString('latin1', 0, Math.min(b.length, max))) + (b.length > max ? `… (${b.length} bytes)` : '');
}

export function respParserFuzz(inputs: number): void {
  test(`RespParser against the reference model: ${inputs.toLocaleString('en')} inputs in random chunks`, (t) => {
    const seed = fuzzSeed();
    t.log(`seed ${seed} (SATCHEL_FUZZ_SEED=${seed} replays this run), ${inputs} inputs`);
    const rng = new Rng(seed);
    const generator = new RespGenerator(rng, { limits: randomLimits(rng) });
    const built = new Growing();
    const failures: string[] = [];
    const outcome = { commands: 0, errors: 0, partial: 0, limitChanges: 0 };
    const errorTexts = new Map<string, number>();
    let streams = 0;
    let events = 0;
    let bytes = 0;
    let largestAllocation = 0;

    // Every allocation the parser asks for while push() and next() run, against what it was sent so far.
    const { allocUnsafe, allocUnsafeSlow, alloc } = Buffer;
    let watching = false;
    let requested = 0;
    const watch = <F extends (size: number, ...rest: never[]) => Buffer>(f: F): F =>
      ((size: number, ...rest: never[]) => {
        if (watching && size > requested) requested = size;
        return f(size, ...rest);
      }) as F;
    Buffer.allocUnsafe = watch(allocUnsafe);
    Buffer.allocUnsafeSlow = watch(allocUnsafeSlow);
    Buffer.alloc = watch(alloc);
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    const started = performance.now();
    try {
      while (events < inputs && failures.length < MAX_FAILURES) {
        const stream = streams++;
        const limits = randomLimits(rng);
        generator.options.limits = limits;
        // Some streams are clean runs of commands, some mostly garbage.
        const fuzzRate = rng.pick([0, 0, 0.02, 0.1, 0.3, 1]);
        // Now and then the limits change after a command, as AUTH raises them.
        const changeAfter = rng.chance(0.3) ? rng.int(6) : -1;
        const changed = randomLimits(rng);
        const after = (_args: Buffer[], i: number) => (i === changeAfter ? changed : undefined);
        // Pieces go on while the parser would still read them: after a piece that may break the stream, the model
        // says whether it did, and then one more piece follows (which must yield nothing).
        // A valid command breaks it too when it is past a limit.
        built.reset();
        let model = modelParse(built.view(), limits, after);
        for (let i = rng.range(1, 48); i > 0; i--) {
          built.append(generator.piece(fuzzRate));
          model = modelParse(built.view(), limits, after, model);
          if (model.end === 'dead') {
            built.append(generator.piece(fuzzRate));
            break;
          }
        }
        // A buffer of its own: an owned argument must not be a view of it.
        const input = allocUnsafeSlow(built.view().length);
        built.view().copy(input);
        // Read again in one go: the same as piece by piece, or the resumption is wrong.
        const whole = modelParse(input, limits, after);
        if (whole.events.length !== model.events.length || whole.end !== model.end)
          failures.push(`stream ${stream}: the model read on differs from the model read in one go`);
        model = whole;
        events += model.events.length;
        bytes += input.length;

        const problems: string[] = [];
        const parser = new RespParser({ ...limits });
        let next = 0;
        let commands = 0;
        let pushed = 0;
        let dead = false;
        const check = (got: RespCommand | RespProtocolError | RespOversized) => {
          const want = model.events[next++];
          // These limits skip nothing (maxSkippedBulkBytes 0): a bulk over the limit breaks the stream.
          if ('oversized' in got) {
            problems.push(`#${next - 1}: an oversized command (${got.oversized} bytes), with nothing to skip`);
            return;
          }
          if (dead) problems.push(`#${next - 1} after the protocol error`);
          if (want === undefined) {
            problems.push(
              `#${next - 1}: ${'error' in got ? got.error : `[${got.args.map((a) => show(a, 40))}]`}, the model expects nothing more`,
            );
            return;
          }
          if ('error' in got) {
            dead = true;
            if (want.kind !== 'error') problems.push(`#${next - 1}: error ${JSON.stringify(got.error)}, the model expects a command`);
            else if (got.error !== want.text)
              problems.push(`#${next - 1}: error ${JSON.stringify(got.error)}, the model ${JSON.stringify(want.text)}`);
            return;
          }
          if (want.kind !== 'command') {
            const wanted = want.kind === 'error' ? JSON.stringify(want.text) : `an oversized command (${want.length} bytes)`;
            problems.push(`#${next - 1}: a command of ${got.args.length} arguments, the model expects ${wanted}`);
            return;
          }
          if (got.args.length !== want.args.length || got.args.some((a, i) => !a.equals(want.args[i]!)))
            problems.push(`#${next - 1}: [${got.args.map((a) => show(a, 40))}], the model [${want.args.map((a) => show(a, 40))}]`);
          for (let i = 0; i < got.args.length; i++)
            if (got.owned(i) && got.args[i]!.buffer === input.buffer && got.args[i]!.length > 0)
              problems.push(`#${next - 1}: argument ${i} is called owned but is a view of the input`);
          if (commands++ === changeAfter) {
            parser.limit(changed);
            outcome.limitChanges++;
          }
        };
        const chunks = respChunks(rng, input);
        requested = 0;
        for (const chunk of chunks) {
          pushed += chunk.length;
          watching = true;
          try {
            parser.push(chunk);
            for (let got = parser.next(); got !== null; got = parser.next()) check(got);
          } catch (error) {
            problems.push(`threw ${String(error)}`);
            break;
          } finally {
            watching = false;
          }
          if (requested > FIRST_ALLOCATION + 2 * pushed) problems.push(`allocated ${requested} bytes with ${pushed} received`);
          largestAllocation = Math.max(largestAllocation, requested);
          requested = 0;
        }
        if (next !== model.events.length) problems.push(`${next} results, the model ${model.events.length}`);
        if (model.end === 'dead') {
          // Nothing more, whatever follows.
          parser.push(multibulk(['PING']));
          if (parser.next() !== null) problems.push('a result after the protocol error');
        }
        for (const e of model.events) {
          if (e.kind === 'command') outcome.commands++;
          else if (e.kind === 'error') {
            outcome.errors++;
            const kind = e.text.replace(/'[\s\S]'$/, "'…'");
            errorTexts.set(kind, (errorTexts.get(kind) ?? 0) + 1);
          }
        }
        if (model.end === 'partial') outcome.partial++;
        if (problems.length > 0)
          failures.push(
            `stream ${stream} (limits ${JSON.stringify(limits)}${changeAfter >= 0 ? `, after command ${changeAfter} ${JSON.stringify(changed)}` : ''}; ` +
              `chunks ${chunks
                .slice(0, 24)
                .map((c) => c.length)
                .join(',')}${chunks.length > 24 ? '…' : ''}; input ${show(input, 400)}): ${problems.slice(0, 3).join('; ')}`,
          );
      }
    } finally {
      Buffer.allocUnsafe = allocUnsafe;
      Buffer.allocUnsafeSlow = allocUnsafeSlow;
      Buffer.alloc = alloc;
      Error.stackTraceLimit = stackTraceLimit;
    }
    const seconds = (performance.now() - started) / 1000;
    t.log(
      `${events.toLocaleString('en')} inputs through the parser (${outcome.commands} commands, ${outcome.errors} protocol errors) in ` +
        `${streams.toLocaleString('en')} streams, ${(bytes / 2 ** 20).toFixed(1)} MiB, ${seconds.toFixed(1)} s; streams left mid-command ` +
        `${outcome.partial}; limits changed mid-stream ${outcome.limitChanges} times; largest allocation ${largestAllocation} bytes`,
    );
    t.log(
      `pieces: ${Object.entries(generator.counts)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
    t.log(`errors: ${[...errorTexts].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    t.deepEqual(failures, [], `seed ${seed}`);
    t.true(events >= inputs || failures.length > 0);
  });

  test('RespParser: a huge declared bulk allocates only what arrives; limits hold at their edges', (t) => {
    for (const declared of [2 ** 30, 2 ** 30 - 1, 500 * 1024 * 1024]) {
      const parser = new RespParser({ maxBulkBytes: 2 ** 30 });
      const arrayBuffers = process.memoryUsage().arrayBuffers;
      parser.push(Buffer.from(`*2\r\n$3\r\nSET\r\n$${declared}\r\n`));
      t.is(parser.next(), null);
      const chunk = Buffer.alloc(1 << 20);
      for (let i = 0; i < 4; i++) {
        parser.push(chunk);
        t.is(parser.next(), null);
      }
      const grown = process.memoryUsage().arrayBuffers - arrayBuffers;
      t.true(grown < 16 * 2 ** 20, `${grown} bytes held for 4 MiB received of a ${declared}-byte bulk`);
    }
    const parse = (limits: RespLimits | { maxBulkBytes: number }, text: string) => {
      const parser = new RespParser(limits);
      parser.push(Buffer.from(text, 'latin1'));
      const got = parser.next();
      if (got === null) return null;
      if ('oversized' in got) return `oversized ${got.oversized}`;
      return 'error' in got ? got.error : got.args.map((a) => a.toString('latin1'));
    };
    const limits = { maxBulkBytes: 3, maxArgs: 2, maxInlineBytes: 10 };
    t.deepEqual(parse(limits, '*2\r\n$3\r\nabc\r\n$0\r\n\r\n'), ['abc', '']);
    t.is(parse(limits, '*3\r\n'), 'Protocol error: invalid multibulk length');
    t.is(parse(limits, '*1\r\n$4\r\n'), 'Protocol error: invalid bulk length');
    t.deepEqual(parse(limits, 'a b\r\n'), ['a', 'b']);
    t.is(parse(limits, 'a b c\r\n'), 'Protocol error: too big inline request');
    t.deepEqual(parse(limits, '123456789\n'), ['123456789']);
    t.deepEqual(parse(limits, '1234567890\n'), ['1234567890']);
    t.is(parse(limits, '12345678901\n'), 'Protocol error: too big inline request');
    t.is(parse(limits, '1234567890a'), 'Protocol error: too big inline request');
    t.is(parse(limits, `*${'1'.repeat(10)}\r\n`), 'Protocol error: too big mbulk count string');
    t.is(parse(limits, `*1\r\n$${'0'.repeat(10)}\r\n`), 'Protocol error: too big bulk count string');
  });
}
