#!/usr/bin/env bash
# Long soak of the face service under injected faults: starts `gpuguard
# serve` on a simulated 512 MiB GPU with OOM and kernel-launch faults and a
# CPU fallback (like tests/test-soak.c, on a temporary data dir), runs
# `gpuguard stress --mix` against it and prints the report (text, then the
# JSON to --json FILE). Builds nothing: run by hand after a Release build.
# Results of a run are in bench/README.md ("Soak").
#
# Usage: bench/soak.sh [--bin PATH] [--requests N] [--concurrency C]
#                      [--faults SPEC] [--mix SPEC] [--isolate N] [--json FILE]
# Defaults: --bin build/gpuguard, 10000 requests, concurrency 2,
#   faults oom%0.05,launch%0.0005, mix default
#   (recognize=70,detect=15,enroll=10,switch=5), the server's default
#   isolation (--isolate 2 also puts the CPU device in a worker process, so
#   the server's RSS no longer swings with the CPU fallback's models), JSON to soak-<date>.json
#   in the current directory. Copy the binary elsewhere (--bin) if you
#   rebuild while it runs: device workers are started from the server's
#   own executable.
# Why launch%0.0005: the engine makes one kernel launch per op and a request
# runs several models of 30-150 ops each; at launch%0.05 the sim failed its
# warm-up at start and never served. The 10,000-request run in
# bench/README.md met 391 launch failures at 0.0005. No OOM reached the
# guard in that run (its ooms counter stayed 0); an allocation failure the
# memory pool absorbs (it retries with a smaller segment, docs/FAULTS.md)
# is not counted, so whether the sim fired any is not visible.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/build/gpuguard"
requests=10000
conc=2
faults="oom%0.05,launch%0.0005"
mix=default
isolate=""
json="soak-$(date -u +%Y%m%dT%H%M%SZ).json"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift ;;
    --requests) requests=$2; shift ;;
    --concurrency) conc=$2; shift ;;
    --faults) faults=$2; shift ;;
    --mix) mix=$2; shift ;;
    --isolate) isolate=$2; shift ;;
    --json) json=$2; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$bin" ] || { echo "soak.sh: $bin not built (cmake --build build --target gpuguard)" >&2; exit 1; }

dir=$(mktemp -d /tmp/gg-soak-XXXXXX)
key="soak-key-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

GPUGUARD_API_KEY=$key "$bin" serve --port 0 --port-file "$dir/port" --log-level warn \
  --device sim:mem=512M --fallback cpu --faults "$faults" --data-dir "$dir" \
  ${isolate:+--isolate "$isolate"} \
  >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -s "$dir/port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; echo "soak.sh: server exited" >&2; exit 1; }
  sleep 0.1
done
port=$(cat "$dir/port")
echo "soak: $(date -u +%FT%TZ) $(nproc) cores, server pid $pid on port $port, faults $faults${isolate:+, --isolate $isolate}"
echo "soak: $bin stress --mix $mix --requests $requests --concurrency $conc --sample-every 50"
rc=0
GPUGUARD_API_KEY=$key "$bin" stress --url "http://127.0.0.1:$port" --mix "$mix" \
  --requests "$requests" --warmup 20 --concurrency "$conc" --sample-every 50 \
  --time-limit 86400 --max-growth-mb 64 --json >"$json" || rc=$?
python3 - "$json" <<'PY' || cat "$json"
import json, sys
d = json.load(open(sys.argv[1]))
m = d["server_rss_mb"]
print(f"requests {d['sent']}/{d['requests']} in {d['wall_s']:.0f} s ({d['requests_per_s']:.2f} req/s): "
      f"served {d['served']}, lost {d['lost']}, unexpected {d['unexpected']}")
print(f"server RSS MiB: start {m['start']:.1f}, end {m['end']:.1f}")
for what, s in (("every 50 requests", m), ("after each switch back to the primary", m["after_switch_to_primary"])):
    print(f"  {what} ({s['samples']} samples): first {s['first']:.1f} last {s['last']:.1f} max {s['max']:.1f}, "
          f"slope {s['slope_per_1000_requests']:+.3f} MiB per 1000 requests, "
          f"quarter means {s['first_quarter_mean']:.1f} -> {s['last_quarter_mean']:.1f}, "
          f"minima {s['first_quarter_min']:.1f} -> {s['last_quarter_min']:.1f}, "
          f"maxima {s['first_quarter_max']:.1f} -> {s['last_quarter_max']:.1f}")
print("| route | count | ok | lost | statuses | p50 ms | p95 ms | p99 ms | max ms | fallback answers | episodes (recovered) | recovery p50 / max ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for k, v in d["routes"].items():
    l, r = v["latency_ms"], v["recovery"]
    print(f"| {k} | {v['count']} | {v['ok']} | {v['lost']} | {json.dumps(v['status'])} | {l['p50']:.0f} | "
          f"{l['p95']:.0f} | {l['p99']:.0f} | {l['max']:.0f} | {v['fallback_answers']} | "
          f"{r['episodes']} ({r['recovered']}) | {r['p50_ms']:.0f} / {r['max_ms']:.0f} |")
g = d["guard_delta"]
print("guard counters over the run: " + ", ".join(f"{k} {v}" for k, v in g.items() if v))
print("pass" if d["pass"] else "FAIL")
PY
echo "soak: JSON report in $json; server log: $(grep -c . "$dir/server.log") lines," \
  "$(grep -c ' ERROR ' "$dir/server.log" || true) ERROR lines"
grep ' ERROR ' "$dir/server.log" | sed 's/^[^ ]* //' | sort | uniq -c | sort -rn | head -5 || true
exit $rc
