#!/usr/bin/env bash
# Benchmark: reminder dispatch from the outbox through the real Tencent client to a local fake
# gateway (which verifies every request's TC3 signature), on SQLite and on PostgreSQL + Redis.
#
# Runs `tests/examples/dispatch_bench.rs` in release ROUNDS times: each run queues PER_MEMBER
# payout messages for every demo member with a phone (40 members: 20,000 messages by default)
# and times one `Dispatcher::run` sending them all. Prints one line per backend and run.
#
#   bench/dispatch.sh                          # builds the release example first
#   BENCH_BIN=path/to/dispatch_bench bench/dispatch.sh
# Environment: HUZHU_TEST_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/postgres),
# HUZHU_TEST_REDIS_URL (redis://127.0.0.1:6379), PER_MEMBER (500), ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."

export HUZHU_TEST_POSTGRES_URL="${HUZHU_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export HUZHU_TEST_REDIS_URL="${HUZHU_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
PER_MEMBER="${PER_MEMBER:-500}"
ROUNDS="${ROUNDS:-3}"
BIN="${BENCH_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release --workspace --examples
  BIN="${CARGO_TARGET_DIR:-target}/release/examples/dispatch_bench"
fi

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$ROUNDS"); do
  "$BIN" "$PER_MEMBER"
done
