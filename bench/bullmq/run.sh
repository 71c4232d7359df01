#!/usr/bin/env bash
# Installs BullMQ 5 (npm registry) on first use and runs the baseline: bench/bullmq/run.sh [jobs] [concurrency...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
[ -d node_modules/bullmq ] || npm install --no-audit --no-fund --silent
exec node bench.mjs "$@"
