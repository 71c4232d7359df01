#!/usr/bin/env bash
# Gateway benchmark: signed GitHub webhooks and signed Discord interactions through the real
# release gateway into the machine's Redis, in an isolated key namespace that is deleted at the end.
#
#   gateway/bench/run.sh [duration=10s] [connections=64] [wrk threads=1]
#
# Env: REDIS_URL (default redis://127.0.0.1:6379), BENCH_PORT (18080),
#      BENCH_DISCORD_COUNT (pre-signed interactions, default 300000),
#      BENCH_GITHUB_BODY (compact|fixture, default both).
set -euo pipefail

DURATION=${1:-10s}
CONNS=${2:-64}
THREADS=${3:-1}
PORT=${BENCH_PORT:-18080}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
DISCORD_COUNT=${BENCH_DISCORD_COUNT:-300000}
BODIES=${BENCH_GITHUB_BODY:-compact fixture}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$ROOT/gateway/bench
NS=bench-$(date +%s)-$$
TMP=$(mktemp -d)
SECRET=bench-github-secret
GUILD=101010101010101010
GW_PID=""

redis() { redis-cli -u "$REDIS_URL" "$@"; }

cleanup() {
  if [[ -n "$GW_PID" ]]; then kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
  for pattern in "{$NS}:*" "$NS:*"; do
    redis --scan --pattern "$pattern" | xargs -r -n 1000 redis-cli -u "$REDIS_URL" UNLINK >/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is required (apt-get install -y wrk)" >&2; exit 1; }
cd "$ROOT"
cargo build --release -p onomancer-gateway --bin onomancer-gateway --example bench_requests >&2
BIN=$ROOT/target/release

# Config: the repository's defaults and tiers, one bench tenant with limits out of the way.
mkdir -p "$TMP/config/tenants"
cp config/defaults.json config/quotas.json "$TMP/config/"
cat > "$TMP/config/tenants/bench.json" <<JSON
{
  "tenantId": "bench", "name": "Bench", "tier": "enterprise",
  "config": {"discordServerId": "$GUILD", "defaultPersonas": ["product"],
             "github": {"documentPaths": ["docs/prd/**"]}},
  "quotas": {"transformationsPerDay": null, "transformationsPerMonth": null, "storageGB": null,
             "usersMax": null, "requestsPerMinute": 100000000},
  "credentials": {"githubWebhookSecret": {"env": "BENCH_GITHUB_SECRET"}}
}
JSON
# thj is the default tenant and must exist.
cp config/tenants/thj.json "$TMP/config/tenants/"

echo "generating $DISCORD_COUNT signed interactions..." >&2
PUBKEY=$("$BIN/examples/bench_requests" discord "$DISCORD_COUNT" "$TMP/discord.txt" "$GUILD")

BENCH_GITHUB_SECRET=$SECRET \
REDIS_URL=$REDIS_URL ONOMANCER_NAMESPACE=$NS ONOMANCER_CONFIG_DIR=$TMP/config \
ONOMANCER_HTTP_ADDR=127.0.0.1:$PORT DATABASE_URL=sqlite://$TMP/usage.db \
DISCORD_PUBLIC_KEY=$PUBKEY RUST_LOG=${RUST_LOG:-warn} ONOMANCER_LOG_FORMAT=json \
  "$BIN/onomancer-gateway" >"$TMP/gateway.log" 2>&1 &
GW_PID=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$TMP/gateway.log" >&2; exit 1; }

gw_cpu() { # gateway CPU seconds so far
  awk -v t="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / t}' "/proc/$GW_PID/stat"
}
redis_cpu() { # Redis server CPU seconds so far
  redis INFO cpu | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.1f", s}'
}
PERF_PID=""
perf_start() { # run-name: optional 5 s profile of the gateway (BENCH_PERF_OUT-<run-name>)
  PERF_PID=""
  if [[ -n "${BENCH_PERF_OUT:-}" ]]; then
    perf record -F 499 -g -p "$GW_PID" -o "$BENCH_PERF_OUT-$1" -- sleep 5 >/dev/null 2>&1 &
    PERF_PID=$!
  fi
}
perf_wait() { if [[ -n "$PERF_PID" ]]; then wait "$PERF_PID"; fi; }
cpu_mark() { CPU_GW=$(gw_cpu); CPU_REDIS=$(redis_cpu); }
cpu_report() {
  echo "CPU seconds during the run: gateway $(echo "$(gw_cpu) - $CPU_GW" | bc), redis $(echo "$(redis_cpu) - $CPU_REDIS" | bc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}

metric() { # route status -> count
  curl -fs "http://127.0.0.1:$PORT/metrics" \
    | awk -v r="route=\"$1\"" -v s="status=\"$2\"" 'index($0, "onomancer_gateway_requests_total{") == 1 && index($0, r) && index($0, s) {print $2}' \
    | head -1
}

run_github() { # body-kind
  local kind=$1 body=$TMP/github-$1.json
  if [[ $kind == fixture ]]; then
    cp gateway/tests/fixtures/github/workflow_run.completed.json "$body"
  else
    cat > "$body" <<'JSON'
{"action":"completed","workflow_run":{"id":30433642,"name":"Build","head_branch":"main","head_sha":"acb5820ced9479c074f688cc328bf03f341a511d","status":"completed","conclusion":"success","html_url":"https://github.com/octo-org/octo-repo/actions/runs/30433642","run_number":562},"repository":{"id":1296269,"full_name":"octo-org/octo-repo"},"sender":{"login":"octocat"}}
JSON
  fi
  local before after stream
  stream="{$NS}:q:stream:default:bench"
  before=$(redis XLEN "$stream")
  local ok_before; ok_before=$(metric "/webhooks/github/{tenant}" 202); ok_before=${ok_before:-0}
  echo "== GitHub workflow_run ($kind body, $(wc -c <"$body") bytes): wrk -t$THREADS -c$CONNS -d$DURATION --latency"
  cpu_mark
  perf_start "$kind"
  BENCH_BODY_FILE=$body BENCH_SIGNATURE=$("$BIN/examples/bench_requests" github "$SECRET" "$body") \
  BENCH_RUN_ID=$kind-$NS \
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$BENCH/github.lua" \
    "http://127.0.0.1:$PORT/webhooks/github/bench"
  after=$(redis XLEN "$stream")
  perf_wait
  local ok; ok=$(metric "/webhooks/github/{tenant}" 202)
  cpu_report
  echo "accepted (202) by the gateway: $(( ${ok%.*} - ${ok_before%.*} )); jobs added to Redis: $(( after - before ))"
}

for kind in $BODIES; do run_github "$kind"; done

echo "== Discord /usage interactions (pre-signed, $DISCORD_COUNT distinct): wrk -t$THREADS -c$CONNS -d$DURATION --latency"
stream="{$NS}:q:stream:interactive:bench"
before=$(redis XLEN "$stream")
cpu_mark
perf_start discord
BENCH_DISCORD_FILE=$TMP/discord.txt BENCH_THREADS=$THREADS \
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$BENCH/discord.lua" \
  "http://127.0.0.1:$PORT/discord/interactions"
after=$(redis XLEN "$stream")
perf_wait
cpu_report
ok=$(metric "/discord/interactions" 200)
echo "answered 200 by the gateway: ${ok%.*}; distinct jobs added to Redis: $(( after - before )) (answers beyond $DISCORD_COUNT are replays of already stored interactions)"
grep -c '"level":"ERROR"' "$TMP/gateway.log" | sed 's/^/gateway error lines: /'
