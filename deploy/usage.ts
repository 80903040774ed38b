/** `satchel help`: every command and flag, the benchmarks' included (perf/main.ts prints it too). */
import { TENANT_USAGE } from './tenant-command.ts';

export const USAGE = `Usage: satchel <command> [flags]

  up                      the whole cluster on this machine (controller + console, metadata, storage nodes)
    --state-dir DIR         where cluster.json, the secret and logs go (default ./.satchel); one cluster
                            at a time: DIR/satchel.lock keeps a second one out
    --controller-port P     controller gRPC port (default 7070; 0 = any free port)
    --console-port P        console HTTP port (default 7071; 0 = any free port)
    --dram N, --ssd N, --hdd N   storage nodes per tier (default 1 each)
    --dram-capacity SIZE    bytes per DRAM node, e.g. 512MiB (default 1GiB)
    --ssd-capacity SIZE     bytes per SSD node (default 4GiB); data in DIR/data/<node>
    --hdd-capacity SIZE     bytes per HDD node (default 8GiB)
    --hdd-seek-ms MS        emulate a spinning disk's seek on HDD nodes (default off)
    --metadata N            metadata servers (default 1); --metadata-copies N: how many hold each job's
                            placement (default 2), as for controller
    --spare-jobs N          placements the controller makes ahead of registrations, as for controller
    --keep-logs             keep DIR/logs after stopping
    --controller-heap small|large   small (default): the controller trades speed for memory
                            (--optimize-for-size); large: V8's own heap sizing, for thousands of nodes
    --tls-cert FILE --tls-key FILE --tls-ca FILE   every process serves TLS with this certificate (PEM; it
                            must name 127.0.0.1), clients check it against the CA; deploy/README.md has how
    --no-autoscale          keep the nodes started; otherwise the autoscaler adds and drains nodes (local
                            processes), never going below the counts above
    --no-restart            leave a process that died down; otherwise it is started again as itself after
                            1 s, backing off to 60 s if it keeps dying, as Kubernetes restarts a pod: a
                            storage node as the same node (id, ports, data folder), the controller on its
                            ports with its jobs (DIR/controller), a metadata server on its ports
    --band, --min-nodes, --max-nodes, --scale-up-after-ms, --scale-down-after-ms, --cooldown-ms   as for controller

  controller              the controller and its console, for containers
    --port P --console-port P --host H --secret-file FILE
    [--tls-cert FILE --tls-key FILE --tls-ca FILE]   serve TLS with this certificate and key (PEM), and check
                            the others' certificates against the CA (all three or none; tickets carry the CA);
                            also for metadata and storage-node. deploy/README.md: making them
    [--advertise HOST]      the host others dial when it is not --host (a pod binding 0.0.0.0); also for
                            metadata and storage-node
    [--state-dir DIR]       keep jobs, nodes and placements in DIR/controller.db across restarts
    [--lease-ms MS]         a job whose driver stops renewing is collected after MS (default 60000)
    [--node-timeout-ms MS]  a storage node silent this long is lost: replicated jobs get their copies restored
                            on the others (default 5000)
    [--token-ttl-ms MS]     job tokens (and the tickets carrying them) stop working after MS; a driver's lease
                            renewals bring fresh ones (default 86400000: a day)
    [--job-quota SIZE]      bytes a job may hold, every copy counted: past it its PUTs get FULL (default none)
    [--metadata-copies N]   metadata servers holding each job's placement, picked per job (default 2; all of
                            them when fewer): lookups spread over the servers as jobs do
    [--spare-jobs N]        job placements made ahead of registrations like the last ones (default 8; 0:
                            none): a registration that takes one waits for its record alone (0 to 64)
    [--no-default-tenant]   no default tenant (its key derived from the secret, cluster.json tenantKey): jobs
                            only for tenants added with satchel tenant add
    [--console-host H]      the console's bind host (default: --host)
    [--provisioner none|local|kubernetes]   what starts and stops storage nodes (default none: by hand;
                            local: the parent satchel up; kubernetes: scales StatefulSets satchel-<tier>)
    [--namespace NS]        the Kubernetes namespace of those StatefulSets
    [--autoscale]           keep each tier's utilization inside the band (needs a provisioner):
    [--band LOW-HIGH]         percent of CPU, network or capacity (default 60-80)
    [--min-nodes T=N,…]       per tier (default dram=1,ssd=0,hdd=0); --max-nodes T=N,… (default 8 each)
    [--scale-up-after-ms MS]  above the band this long before a launch (default 2000)
    [--scale-down-after-ms MS]  below it this long before a drain (default 20000); a quarter of that
                              when one node fewer would stay at or under the band's middle
    [--cooldown-ms MS]        between two actions on a tier (default 10000)
  metadata                a metadata server
    --port P --host H --controller HOST:PORT --secret-file FILE [--advertise HOST]
    [--tls-cert FILE --tls-key FILE --tls-ca FILE]   gRPC over TLS, as for controller
    [--metrics-port P]      serve Prometheus /metrics on P (0: any free port); also for storage-node
  storage-node            a storage node
    --tier dram|ssd|hdd --port P --host H --controller HOST:PORT --secret-file FILE [--advertise HOST]
    [--tls-cert FILE --tls-key FILE --tls-ca FILE]   the data plane over TLS, as for controller
    [--path DIR]            data directory, required for ssd and hdd (wiped at start: data is ephemeral)
    [--capacity SIZE]       default 1GiB dram, 4GiB ssd, 8GiB hdd
    [--bandwidth BYTES/S]   declared to the controller; default 1G dram, 500M ssd, 150M hdd
    [--seek-ms MS] [--disk-bandwidth BYTES/S]   emulate a device (off by default)
    [--max-value SIZE] [--id ID] [--metrics-port P]
    [--resp-port P]         open the RESP front door on P (0: any free port): Redis clients of its jobs, over
                            TLS with the --tls-* flags, advertised as --advertise HOST:P (none when omitted)
    [--job-max-connections N]   connections one job may open to the node (default 1024)

${TENANT_USAGE}
  bench micro             GET/PUT latency and throughput against Satchel and Redis in the same run
    --json FILE             write the results as JSON
    --redis HOST:PORT       use this Redis instead of starting redis-server
    --seconds S             time per measurement (default 1.5)
    --sizes 1024,65536      value sizes in bytes (default 1024,65536,1048576)
    --concurrency 1,64      requests in flight per cell, one connection (default 1,64)
    --tier dram,ssd,hdd     which Satchel tiers to measure (default dram), each against the same Redis

  bench register          register + attach + first PUT while another job keeps the cluster busy, against a
                          new Redis connection + first SET
    --jobs N                how many (default 200)
    --json FILE, --redis HOST:PORT

  bench shuffle           a sort of 100-byte records by M map and R reduce functions (worker processes) on
                          Satchel and on Redis in the same run; every sort's output is verified
    --bytes SIZE            input size (default 1GiB)
    --mappers M, --reducers R   functions per stage (default 64 × 64)
    --concurrency N         functions running at once (default 8)
    --tier dram|ssd|hdd     the Satchel job's tier (default dram); --nodes N storage nodes of it (default 1)
    --cluster-file FILE     run the Satchel jobs on this cluster (satchel up's cluster.json: its controller
                            and tenantKey; e.g. to watch them in its console) instead of starting one; it is
                            left running
    --controller HOST:PORT --key KEY   the same without the file (KEY: cluster.json tenantKey, or a key
                            satchel tenant add printed; --key also overrides the file's)
    --redis-shards N        redis-servers to start, keys sharded by the client (default 1)
    --redis HOST:PORT[,…]   use these Redis servers instead of starting any
    --no-redis              no Redis baseline: Satchel rows only
    --function-mbps MBPS    cap each function's network at MBPS megabits/s (real functions: ~600)
    --rounds N              sorts per system, alternating which system goes first (default 1)
    --json FILE, --html FILE   write the results, and a report with charts

  bench jobs              staggered sorts on one cluster, sampling reserved and used bytes every second
    --jobs N                how many (default 3); --stagger S seconds between starts (default 2)
    --bytes SIZE            per job (default 256MiB); --mappers, --reducers (default 16 × 16)
    --cluster-file FILE     an existing cluster, and its console for the samples (read with its viewerToken)
    --controller HOST:PORT --key KEY --console URL --viewer-token TOKEN   the same without the file
    and the other flags of bench shuffle

  bench elasticity, bench drain   the autoscaler under a ramp, and a node drained under load (perf/README.md)

  bench wait              waiting for data: a waiter in another process learning of a put (Satchel waitFor vs
                          Redis BLPOP), and idle waiters parked on one node (memory, CPU) vs blocked Redis clients
    --notifications N       measured per system (default 1000)
    --waiters N             parked on the Satchel node (default 10000); --redis-waiters N (default 2000)
    --idle-seconds S        how long idle CPU is measured (default 10); --json FILE

  bench soak              mixed operations from many clients for minutes (short-lived DRAM and SSD jobs, values
                          over 1 MiB, incr, waitFor, every value read back checked); every interval: RSS and
                          open fds of each server, op p50/p99 and the machine's own p99 beside it (bare
                          round trips between two processes), ops, errors; exits 1 on errors or lost data
    --minutes N             length of the run (default 10; fractions allowed)
    --interval-seconds S    reporting period; the first is the warm-up (default 60)
    --processes N, --lanes N   client processes and requests in flight in each (default 4 × 16)
    --lanes-per-job N       functions sharing one job (default 4); --job-seconds S mean job life (default 10)
    --rate OPS/S            target operations per second over all clients (default 1000; 0 = flat out)
    --large-fraction F      share of operations writing a value over 1 MiB (default 0.02)
    --cluster-file FILE     an existing cluster (its servers watched if on this machine)
    --controller HOST:PORT --key KEY --console URL --viewer-token TOKEN   the same without the file
    --json FILE

  bench abuse             a well-behaved job (8 in flight, 1 KiB PUT/GET) alone, then under each attack in
                          turn from another process, then alone again: its p99 against the baseline, what
                          was refused or disconnected, node and controller RSS; exits 1 if the job had a failure
    --seconds S             each phase (default 10)
    --sse-seconds S         the stalled console streams' phase (default 30; the issue's figure: 300), after
                            half as long (at most 60 s) of job churn alone
    --hello-seconds S       the idle-connection phase at least (default 12: the node's HELLO deadline is 10 s)
    --rate OPS/S            the well-behaved job's rate (default 4000); --scale F the attacks' sizes (default 1)
    --attacks A,B,…         some of anonymous-register, huge-capacity, grow-loop, epoch-max, idle-connections,
                            stalled-watchers, long-waits, stalled-sse, internal-keys (default all)
    --json FILE

  bench coldstart         the client's install footprint (a packed tarball installed with npm install --omit=dev
                          into an empty project: node_modules bytes, packages, native modules) and a new
                          process's first GET of 1 KiB (spawn → value, median and p90), Satchel against ioredis
    --samples N             processes per system (default 11), after one warm-up each
    --client-tarball FILE   install this tarball of the client instead of packing one
    --pack-dir DIR          npm pack the package named satchel in DIR, or DIR's workspace of that name
                            (default: the repository root; packs what npm run build built)
    --keep-dir DIR          leave the two projects there; --json FILE

  bench resp              the stock redis-benchmark against a redis-server Redis Cluster and against a job's RESP
                          front door (a one-node Satchel cluster), same options, same run: SET and GET
                          requests/s (-t set,get -P 16 -d 1024) and unpipelined GET p50 (-t get -P 1)
    -n N                    requests per test of the throughput run (default 200000; 2000000 from --nodes 2)
    --clients N             its connections (default 50)
    --latency-requests N, --latency-clients N   the unpipelined GET run (default min(N, 100000) × 10)
    --nodes N               nodes on each side (default 1); from 2, redis-benchmark runs with --cluster
    --rounds N              each measuring both systems, alternating which goes first (default 3; medians)
    --floor                 also a bare Node.js SET/GET server (perf/resp-floor.ts): what any node written in
                            Node could reach here (one node only)
    --quick                 a smoke run of seconds: -n 2000, one round, no warm-up; --json FILE

  bench scale             the real controller (its own process, autoscaler on) and metadata servers against
                          simulated storage nodes (one listener each, reporting from a model of their jobs) and a
                          job trace; allocation latency, reports absorbed, controller CPU and RSS, reserved vs
                          used, node-seconds vs a peak-sized cluster, migrations, metadata lookups
    --nodes N               nodes at the start, split by tier from the trace (default 100)
    --jobs N, --seed S      a generated trace (default 1000 jobs, seed 1); or --trace FILE, a CSV trace
    --speed X               simulated seconds per real second (default 1); --max-job-s S caps job durations;
                            --span-s S: a generated trace's arrivals over S simulated seconds (default jobs / 10)
    --report-ms MS          between a node's reports (default 1000); --lookups-per-job-s R (default 0.1)
    --metadata K            metadata servers, each job's placement on two of them (default 1)
    --in-flight N           registrations and deregistrations at once (default 16, at most 32); --sample-ms MS (default 1000)
    --calibrate-s S         seconds of reports alone before the trace, for a report's cost (default 10)
    --nodes-per-connection N   nodes whose reports share one connection (default 1, as real nodes; at
                            10,000 nodes a connection each is past a 20,000 open-file limit)
    --json FILE, --html FILE

  help                    this text
`;
