#!/bin/bash
# The issue-9 queue figures of docs/BENCHMARKS.md, one command after the other (release build
# first: cargo build --release --bin onomancer). Stop other builds for the duration.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
B=./target/release/onomancer
f() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d['concurrency'], d['workers'], d['tenants'], d['jobs_per_s'], d['enqueue_per_s'], d['first_ack_ms'], (d['claim'] or {}).get('us_per_claim'), d['redis_cpu_us_per_job'], d['slow_calls']['calls_over_1ms'], d['slow_calls']['max_call_us'])"; }
uptime
echo "== 1 worker, 1 tenant (conc workers tenants jobs/s enqueue/s first_ack_ms us/claim redis_us/job over1ms max_us)"
for t in 2 1; do for c in 200 500 1000; do echo -n "threads=$t: "; TOKIO_WORKER_THREADS=$t $B bench queue --jobs 100000 --concurrency $c --latency-rate 0 --probe-claims 0 2>/dev/null | f; done; done
echo "== 2 workers over tenants"
for T in 1 1000 10000; do echo -n "threads=1: "; TOKIO_WORKER_THREADS=1 $B bench queue --jobs 100000 --concurrency 200 --workers 2 --tenants $T --latency-rate 0 2>/dev/null | f; done
for T in 1 10000; do echo -n "threads=2: "; TOKIO_WORKER_THREADS=2 $B bench queue --jobs 100000 --concurrency 200 --workers 2 --tenants $T --latency-rate 0 2>/dev/null | f; done
echo "== latency"
TOKIO_WORKER_THREADS=1 $B bench queue --jobs 10000 --concurrency 50 --latency-rate 1000 --latency-seconds 10 --probe-claims 0 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print('p50', d['p50_ms'], 'p99', d['p99_ms'])"
echo "== bullmq"
bench/bullmq/run.sh 100000 50 200 500 1000 2>&1 | tail -8
echo "== onomancer right after"
for c in 200 500; do echo -n "threads=1: "; TOKIO_WORKER_THREADS=1 $B bench queue --jobs 100000 --concurrency $c --latency-rate 0 --probe-claims 0 2>/dev/null | f; done
echo "== lanes"
$B bench lanes 2>/dev/null | tail -1
$B bench lanes --no-reserve 2>/dev/null | tail -1
