/**
 * RespParser against the reference model, 1,000,000 inputs (~10 s): the e2e tier's run of resp-parser-fuzz.suite.ts
 * (the unit tier runs a few thousand in resp-parser.test.ts). SATCHEL_FUZZ_RESP_INPUTS sets the count,
 * SATCHEL_FUZZ_SEED replays a run (the seed is printed).
 */
import { envCount } from '../test/helpers/fuzz.ts';
import { respParserFuzz } from './resp-parser-fuzz.suite.ts';

respParserFuzz(envCount('SATCHEL_FUZZ_RESP_INPUTS', 1_000_000));
