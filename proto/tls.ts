/**
 * Optional TLS on both planes. A server (storage node, metadata server, controller) presents a certificate and
 * its key; every client checks the server's certificate against a CA and the name it dialled (an IP address or
 * a DNS name in the certificate's subjectAltName). Clients present no certificate: a job token (data plane) or
 * the admin token (control plane) says who they are, as without TLS. All PEM.
 */
import { isIP } from 'node:net';
import { type ConnectionOptions, checkServerIdentity } from 'node:tls';

/** What a server role is given (`--tls-cert`, `--tls-key`, `--tls-ca`): its identity, and the CA its own calls trust. */
export interface ServerTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** The CA every certificate of the cluster is signed by: the role's calls to the others verify against it. */
  ca: string | Buffer;
}

/** What a client needs to open a TLS connection to a node or a gRPC server. */
export interface ClientTls {
  /** The CA (PEM) the server's certificate must be signed by. */
  ca: string | Buffer;
  /** The name to check the certificate against, when it is not the host dialled. */
  servername?: string;
}

/** The client side of a server role's TLS: its CA, or nothing without TLS. */
export function clientTlsOf(tls: { ca: string | Buffer } | undefined): ClientTls | undefined {
  return tls === undefined ? undefined : { ca: tls.ca };
}

/**
 * How a client checks the server it dialled at `host`: against `servername` when given, else against the host.
 * SNI is sent only for a DNS name: RFC 6066 allows no IP address there, and Node warns on stderr (DEP0123) when
 * given one. An IP address is checked against the certificate's IP SANs, with no SNI.
 */
export function serverIdentity(host: string, servername?: string): Pick<ConnectionOptions, 'servername' | 'checkServerIdentity'> {
  const name = servername ?? host;
  return {
    ...(isIP(name) === 0 ? { servername: name } : {}),
    checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert),
  };
}
