#!/usr/bin/env bash
# Benchmark (issue 21, 免申即享): the bureau's 200,000-row inpatient settlement file, imported
# by the association and matched against 1,000,000 members on PostgreSQL — upload to finished
# job (read, match, report workbook, store the matches, judge and make the offers).
#
# Creates a fresh PostgreSQL database, starts the release `huzhu serve` on it in demo mode (the
# demo seeds the organisation tree, accounts and schemes), bulk-loads the members (with their
# real sealed ID numbers and look-up hashes, written by `tests/examples/settlement_bench.rs`)
# and their nm-inpatient-2025 periods, then times:
#   - the import, `POST /api/v1/settlement-imports` with the .xlsx until the job has ended;
#   - the same rows by `COPY` into a table of 19 text columns (a reference, not a goal);
#   - the file imported again (every settlement ID known: nothing is added);
# checks the offers in the database against the job's summary, prints the figures and drops the
# database.
#
#   bench/settlements.sh                       # builds the release binary and example first
#   BENCH_NO_BUILD=1 bench/settlements.sh      # uses $CARGO_TARGET_DIR/release as built
# Environment: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres; trust auth), MEMBERS
# (1000000), ROWS (200000), PORT (18093), KEEP_DB=1 (keep the database; drop it yourself).
set -euo pipefail
cd "$(dirname "$0")/.."

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
MEMBERS="${MEMBERS:-1000000}"
ROWS="${ROWS:-200000}"
PORT="${PORT:-18093}"
DB="huzhu_bench_settlements_$$"
TARGET="${CARGO_TARGET_DIR:-target}"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cargo build --release -p huzhu-api --bin huzhu -p huzhu-tests --example settlement_bench
fi
BIN="$TARGET/release/huzhu"
WORK=$(mktemp -d /tmp/huzhu-settlement-bench.XXXXXX)
BASE="http://127.0.0.1:$PORT/api/v1"
SERVER=""

now() { date +%s.%N; }
secs() { printf '%.2f' "$(echo "$2 - $1" | bc)"; }
psql_db() { psql -X -v ON_ERROR_STOP=1 -q -d "$DB" "$@"; }
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -rf "$WORK"
  [ "${KEEP_DB:-0}" = 1 ] && { echo "kept database $DB" >&2; return; }
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

key() { head -c 32 /dev/urandom | base64; }
export HUZHU_PII__ENCRYPTION_KEY HUZHU_PII__LOOKUP_KEY HUZHU_AUTH__JWT_SECRET
HUZHU_PII__ENCRYPTION_KEY=$(key) HUZHU_PII__LOOKUP_KEY=$(key)
HUZHU_AUTH__JWT_SECRET="$(key)$(key)"
export HUZHU_PII__KEY_ID=1

echo "writing ${MEMBERS} members and a ${ROWS}-row settlement file …"
"$TARGET/release/examples/settlement_bench" "$WORK" "$MEMBERS" "$ROWS"
ls -l "$WORK"/settlements.xlsx | awk '{print "settlements.xlsx: " $5 " bytes"}'

psql -X -v ON_ERROR_STOP=1 -q -d postgres -c "CREATE DATABASE \"$DB\""
export HUZHU_DATABASE__URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${DB}"
export HUZHU_MODE=demo HUZHU_DATA_DIR="$WORK/data" HUZHU_LISTEN="127.0.0.1:$PORT"
export HUZHU_CLOCK__TODAY=2025-12-20 HUZHU_LOG__FILTER=warn,huzhu::service::settlement=info,huzhu::service::claim::offering=info
export HUZHU_REMINDERS__SCHEDULE_ENABLED=false HUZHU_REMINDERS__DISPATCH_ENABLED=false
"$BIN" migrate up >/dev/null
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$WORK/server.log"; exit 1; }

echo "loading ${MEMBERS} members and their nm-inpatient-2025 periods …"
load_start=$(now)
psql_db <<SQL
CREATE TEMP TABLE bench_member (pid text, name text, cipher text, lookup text, birth_date date, sex text);
\\copy bench_member FROM '$WORK/members.csv' CSV
INSERT INTO member (pid, organisation_id, name, id_number_cipher, id_number_lookup, birth_date, sex,
                    retired, created_at, updated_at)
SELECT b.pid, o.id, b.name, b.cipher, b.lookup, b.birth_date, b.sex, false, now(), now()
FROM bench_member b, (SELECT id FROM organisation WHERE kind = 'unit_union' ORDER BY id LIMIT 1) o;
INSERT INTO membership (pid, member_id, organisation_id, scheme_code, coverage_start, coverage_end,
                        status, consecutive_periods, continuous_renewal, created_at, fee_fen, source)
SELECT 'bench-period-' || id, id, organisation_id, 'nm-inpatient-2025',
       date '2025-01-01', date '2025-12-31', 'active', 1, false, now(), 9000, 'group'
FROM member WHERE pid LIKE 'bench-member-%';
VACUUM ANALYZE;
SQL
echo "loaded in $(secs "$load_start" "$(now)") s"

TOKEN=$(curl -sf -H 'Content-Type: application/json' -d '{"account":"association"}' \
  "$BASE/auth/dev-login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

import_file() { # prints "seconds<TAB>job json"
  local t0 job id status
  t0=$(now)
  job=$(curl -s -H "Authorization: Bearer $TOKEN" -F "file=@$WORK/settlements.xlsx;filename=settlements.xlsx" \
    "$BASE/settlement-imports")
  id=$(echo "$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') || { echo "upload: $job" >&2; exit 1; }
  while :; do
    job=$(curl -s -H "Authorization: Bearer $TOKEN" "$BASE/settlement-imports/$id")
    status=$(echo "$job" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status", "?"))')
    [ "$status" = "?" ] && { echo "polling the job: $job" >&2; exit 1; }
    case "$status" in succeeded|failed) break ;; esac
    sleep 0.5
  done
  printf '%s\t%s\n' "$(secs "$t0" "$(now)")" "$job"
}
summary() { python3 -c '
import json, sys
j = json.loads(sys.argv[1]); s = j.get("summary") or {}
if j["status"] != "succeeded": sys.exit("the import failed: " + json.dumps(j, ensure_ascii=False))
keys = ["data_rows", "matched", "offered", "corroborating", "not_offered", "already_imported",
        "repeated_in_file", "not_a_member", "not_covered", "outpatient", "other_insurance", "rows_with_problems"]
print(", ".join(f"{k} {s.get(k)}" for k in keys))' "$1"; }

echo "importing ${ROWS} settlements …"
[ -n "${BENCH_BEFORE_IMPORT:-}" ] && eval "$BENCH_BEFORE_IMPORT"
IFS=$'\t' read -r first_s first_job < <(import_file)
echo "import: ${first_s} s — $(summary "$first_job")"
grep -oE '"message":"(settlement import|offers made)[^}]*' "$WORK/server.log" | sed 's/^/  /' || true
offered=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["summary"]["offered"])' "$first_job")
in_db=$(psql_db -At -c "SELECT count(*) FROM claim WHERE filed_by_kind = 'insurance_file' AND status = 'offered'")
messages=$(psql_db -At -c "SELECT count(*) FROM outbox WHERE occasion = 'benefit_offered'")
if [ "$offered" != "$in_db" ] || [ "$offered" != "$messages" ]; then
  echo "error: the summary says $offered offers; the database holds $in_db offers and $messages messages" >&2
  exit 1
fi

psql_db -c "CREATE TABLE settlement_copy ($(python3 -c 'print(", ".join(f"c{i} text" for i in range(19)))'))"
copy_start=$(now)
psql_db -c "\\copy settlement_copy FROM '$WORK/settlements.csv' CSV"
copy_s=$(secs "$copy_start" "$(now)")

IFS=$'\t' read -r again_s again_job < <(import_file)
echo "again:  ${again_s} s — $(summary "$again_job")"
after=$(psql_db -At -c "SELECT count(*) FROM claim WHERE filed_by_kind = 'insurance_file'")
[ "$after" = "$in_db" ] || { echo "error: importing again made offers ($in_db → $after)" >&2; exit 1; }

echo
echo "machine:   $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), PostgreSQL $(psql_db -At -c 'SHOW server_version')"
echo "data:      ${MEMBERS} members, ${ROWS} settlement rows (.xlsx, $(stat -c %s "$WORK/settlements.xlsx") bytes)"
echo "import:    ${first_s} s upload to finished job (goal < 60 s), ${offered} offers made"
echo "COPY:      ${copy_s} s (the same rows as text into a bare table, for reference)"
echo "re-import: ${again_s} s (nothing added)"
