// Build step after tsc: the .proto files are read at run time next to the compiled proto/ module.
import { cpSync, readdirSync } from 'node:fs';

for (const file of readdirSync('proto')) if (file.endsWith('.proto')) cpSync(`proto/${file}`, `dist/proto/${file}`);
