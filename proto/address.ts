/**
 * `host:port` as others should dial it: the bound address with its host replaced by the advertised one, if any.
 * A process in a pod binds 0.0.0.0 but must hand out its pod's name or IP.
 */
export function advertisedAddress(bound: string, advertiseHost: string | undefined): string {
  return advertiseHost === undefined || advertiseHost === '' ? bound : `${advertiseHost}:${bound.slice(bound.lastIndexOf(':') + 1)}`;
}

/** `host:port` a peer can be dialled at: a host name or IPv4 address, or an IPv6 one in brackets, and a port 1–65535. */
export function isHostPort(address: unknown): address is string {
  if (typeof address !== 'string' || address.length > 300) return false;
  const match = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$/.exec(address);
  if (match === null) return false;
  const port = Number(match[1]);
  return port >= 1 && port <= 65535;
}
