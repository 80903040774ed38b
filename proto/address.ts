/**
 * `host:port` as others should dial it: the bound address with its host replaced by the advertised one, if any.
 * A process in a pod binds 0.0.0.0 but must hand out its pod's name or IP.
 */
export function advertisedAddress(bound: string, advertiseHost: string | undefined): string {
  return advertiseHost === undefined || advertiseHost === '' ? bound : `${advertiseHost}:${bound.slice(bound.lastIndexOf(':') + 1)}`;
}
