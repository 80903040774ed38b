// control-types.ts and control-schema.ts are written from control.proto by generate-control.mjs: committed files
// that differ from what it writes now mean someone edited one by hand, or changed the .proto and did not run
// `npm run generate`.

import { readFile } from 'node:fs/promises';
import test from 'ava';
// @ts-expect-error: a plain ESM script with no type declarations
import { generate } from './generate-control.mjs';

test('the generated control-plane types and field tables are what control.proto gives today', async (t) => {
  const files = (generate as () => Record<string, string>)();
  t.deepEqual(Object.keys(files).sort(), ['control-schema.ts', 'control-types.ts']);
  for (const [file, text] of Object.entries(files)) {
    t.is(await readFile(new URL(`./${file}`, import.meta.url), 'utf8'), text, `proto/${file} is out of date: run npm run generate`);
  }
});

test('a field added to control.proto shows in the generated types, optional when the .proto says so', async (t) => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'satchel-proto-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const proto = (await readFile(new URL('./control.proto', import.meta.url), 'utf8')).replace(
    'message RenewLeaseReply {\n',
    'message RenewLeaseReply {\n  optional uint32 grace_ms = 7;  // how long past the lease\n  repeated string notes = 8;\n',
  );
  await writeFile(join(dir, 'control.proto'), proto);
  const types = (generate as (path: string) => Record<string, string>)(join(dir, 'control.proto'))['control-types.ts']!;
  t.regex(
    types,
    /export interface RenewLeaseReply \{[^}]*\/\*\* how long past the lease \*\/\n {2}graceMs\?: number;\n {2}notes: string\[\];/,
  );
  // The client's table for RenewLease gets the new fields too.
  const schema = (generate as (path: string) => Record<string, string>)(join(dir, 'control.proto'))['control-schema.ts']!;
  t.regex(schema, /const RenewLeaseReply: MessageSchema = \[[^\]]*\{ no: 7, name: 'graceMs', type: 'uint32', optional: true \}/);
});
