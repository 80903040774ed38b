/**
 * A throwaway PKI for TLS tests, made with the `openssl` CLI as deploy/README.md shows: a CA and a server
 * certificate it signs, naming 127.0.0.1 and localhost. Not a test file itself.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The openssl configuration: a CA, and a server certificate naming 127.0.0.1 and localhost. */
const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = satchel
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

export interface Pki {
  ca: string;
  cert: string;
  key: string;
}

/** A CA and a server certificate it signs, in `dir` (EC P-256: made in milliseconds). */
export async function makePki(dir: string, name: string): Promise<Pki> {
  const config = join(dir, 'openssl.cnf');
  await writeFile(config, OPENSSL_CONFIG);
  const file = (suffix: string) => join(dir, `${name}-${suffix}`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    '-new',
    ...ec,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '2',
    '-config',
    config,
    '-extensions',
    'ca_ext',
    '-subj',
    `/CN=${name} test CA`,
  ]);
  await run('openssl', [
    'req',
    '-new',
    ...ec,
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
    '-config',
    config,
    '-subj',
    '/CN=satchel-server',
  ]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '2',
    '-out',
    file('server.pem'),
    '-extfile',
    config,
    '-extensions',
    'server_ext',
  ]);
  return { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') };
}

/** Throws a message saying what to install when the openssl CLI is missing. */
export async function needOpenssl(): Promise<void> {
  try {
    await run('openssl', ['version']);
  } catch {
    throw new Error('these tests need the openssl CLI (.ci/run installs it)');
  }
}
