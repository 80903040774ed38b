import test from 'ava';
import { generateRecords, RECORD_BYTES, sortRecords, summarize } from './records.ts';
import { checkOutput, VerificationError } from './shuffle.ts';

/** A correct sort of 600 records into 3 partitions, as summaries. */
function correct() {
  const input = [0, 1, 2].map((m) => summarize(generateRecords('check', m * 200, 200)));
  const sorted = sortRecords(generateRecords('check', 0, 600));
  const output = [0, 1, 2].map((r) => summarize(sorted.subarray(r * 200 * RECORD_BYTES, (r + 1) * 200 * RECORD_BYTES)));
  return { input, output };
}

test('checkOutput accepts a correct sort', (t) => {
  const { input, output } = correct();
  t.notThrows(() => checkOutput(input, output, 600));
});

test('checkOutput rejects an unsorted partition, partitions out of order, lost or changed records', (t) => {
  const { input, output } = correct();
  const fails = (out: typeof output, pattern: RegExp, records = 600) => {
    const error = t.throws(() => checkOutput(input, out, records), { instanceOf: VerificationError });
    t.regex(error!.message, pattern);
  };
  fails([{ ...output[0]!, sorted: false }, output[1]!, output[2]!], /partition 0 is not sorted/);
  fails([output[1]!, output[0]!, output[2]!], /starts before/);
  fails([output[0]!, output[1]!], /400 records out, 600 in/);
  fails([output[0]!, output[1]!, { ...output[2]!, checksum: output[2]!.checksum + 1 }], /checksum/);
  fails([output[0]!, output[1]!, { ...output[2]!, records: -1 }], /whole number of records/);
  fails(output, /input holds 600 records, expected 700/, 700);
});
