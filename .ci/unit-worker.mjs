// Loaded first in every worker thread of `npm run test:unit`: TypeScript through tsx (Node 20 does not carry the
// parent's loader hooks into worker threads), and no child processes (no-processes.mjs).
import { register } from 'tsx/esm/api';
import './no-processes.mjs';

register();
