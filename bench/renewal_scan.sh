#!/usr/bin/env bash
# Benchmark: 1,000,000 memberships ending on one day produce their renewal reminders in one scan.
#
# Creates a fresh PostgreSQL database, migrates it with `huzhu migrate up`, bulk-loads
# 1,000,000 members (with a phone) and their nm-inpatient-2025 periods ending 2025-12-31 with
# generate_series, then times, alternately and on an emptied outbox each time:
#   - `huzhu reminders scan --today 2025-12-24` (the 7-day reminders: 1,000,000 rows), and
#   - the same INSERT … SELECT written by hand for this one scheme and occasion, in psql;
# checks both queued exactly the same rows, prints the figures and the ratio, and drops the
# database.
#
#   bench/renewal_scan.sh                      # builds the release binary first
#   BENCH_BIN=path/to/huzhu bench/renewal_scan.sh
# Environment: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres; trust auth), ROWS (1000000),
# ROUNDS (2), KEEP_DB=1 (keep the database, to look at plans; drop it yourself).
set -euo pipefail
cd "$(dirname "$0")/.."

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
ROWS="${ROWS:-1000000}"
ROUNDS="${ROUNDS:-2}"
DB="huzhu_bench_renewal_$$"
BIN="${BENCH_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release -p huzhu-api --bin huzhu
  BIN="${CARGO_TARGET_DIR:-target}/release/huzhu"
fi

secs() { printf '%.3f' "$1"; }
psql_db() { psql -X -v ON_ERROR_STOP=1 -q -d "$DB" "$@"; }
cleanup() { [ "${KEEP_DB:-0}" = 1 ] && { echo "kept database $DB" >&2; return; }; psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT

psql -X -v ON_ERROR_STOP=1 -q -d postgres -c "CREATE DATABASE \"$DB\""
export HUZHU_DATABASE__URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${DB}"
export HUZHU_LOG__FILTER=warn
"$BIN" migrate up >/dev/null
# Publishes the seed schemes (the scan reads them); nothing is due on this day.
"$BIN" reminders scan --today 2025-06-01 >/dev/null

echo "loading ${ROWS} members and memberships ending 2025-12-31 …"
load_start=$(date +%s.%N)
psql_db <<SQL
INSERT INTO organisation (pid, parent_id, kind, name, path, head_count, created_at)
VALUES ('00000000-0000-0000-0000-00000000be01', NULL, 'unit_union', '基准测试工会', '/1/', NULL, now());
INSERT INTO member (pid, organisation_id, name, id_number_cipher, id_number_lookup, birth_date, sex,
                    phone_cipher, phone_lookup, retired, created_at, updated_at)
SELECT md5('member' || g)::uuid::text, o.id, '参互职工' || g, 'bench', md5('id' || g) || md5('idx' || g),
       date '1980-01-01' + (g % 10000), CASE WHEN g % 2 = 0 THEN 'F' ELSE 'M' END,
       'bench', md5('phone' || g) || md5('phonex' || g), false, now(), now()
FROM generate_series(1, ${ROWS}) g, (SELECT id FROM organisation) o;
INSERT INTO membership (pid, member_id, organisation_id, scheme_code, coverage_start, coverage_end,
                        status, consecutive_periods, continuous_renewal, created_at, fee_fen, source)
SELECT md5('membership' || id)::uuid::text, id, organisation_id, 'nm-inpatient-2025',
       date '2025-01-01', date '2025-12-31', 'active', 1, false, now(), 9000, 'group'
FROM member;
VACUUM ANALYZE;
SQL
echo "loaded in $(secs "$(echo "$(date +%s.%N) - $load_start" | bc)") s"

# The hand-written statement: one scheme, one occasion, literals instead of parameters,
# the same rows, keys and payloads as the scan.
HAND_SQL=$(cat <<'SQL'
INSERT INTO outbox (occasion, member_id, dedupe_key, payload, created_at, due_at, attempts, status)
SELECT 'renewal_due_7', m.member_id,
       'renewal_due_7:' || m.pid || COALESCE(':ext' || CAST(m.extension_id AS TEXT), ''),
       '{"membership":"' || m.pid || '","scheme":"nm-inpatient-2025","coverage_end":"' || CAST(m.coverage_end AS TEXT) || '"}',
       now(), timestamptz '2025-12-24 08:00:00+08', 0, 'pending'
FROM membership m JOIN member p ON p.id = m.member_id
WHERE m.scheme_code = 'nm-inpatient-2025' AND m.coverage_end BETWEEN date '2025-12-24' AND date '2025-12-31'
  AND m.status = 'active' AND p.phone_cipher IS NOT NULL AND p.phone_lookup IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM membership r WHERE r.member_id = m.member_id
                  AND r.scheme_code IN ('nm-inpatient-2022', 'nm-inpatient-2025')
                  AND r.status = 'active' AND r.coverage_start > m.coverage_end)
ON CONFLICT (dedupe_key) DO NOTHING;
SQL
)

reset_outbox() { psql_db -c "TRUNCATE outbox" -c "CHECKPOINT"; }
fingerprint() {
  psql_db -At -c "SELECT COUNT(*) || ' ' || md5(string_agg(dedupe_key || payload || member_id || due_at, ',' ORDER BY dedupe_key)) FROM outbox"
}

scan_times=() hand_times=() preview_s=""
for round in $(seq 1 "$ROUNDS"); do
  reset_outbox
  if [ "$round" = 1 ]; then
    start=$(date +%s.%N)
    "$BIN" reminders preview --day 2025-12-24 | tail -1
    preview_s=$(secs "$(echo "$(date +%s.%N) - $start" | bc)")
  fi
  out=$("$BIN" reminders scan --today 2025-12-24)
  echo "$out" | tail -1
  scan_s=$(echo "$out" | sed -nE 's/.* in ([0-9.]+) s$/\1/p')
  scan_print=$(fingerprint)
  reset_outbox
  hand_ms=$(psql_db -c '\timing on' -c "$HAND_SQL" | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | tail -1)
  hand_print=$(fingerprint)
  hand_s=$(secs "$(echo "scale=6; $hand_ms / 1000" | bc)")
  if [ "$scan_print" != "$hand_print" ]; then
    echo "error: the scan and the hand-written statement queued different rows" >&2
    echo "  scan: $scan_print" >&2
    echo "  hand: $hand_print" >&2
    exit 1
  fi
  echo "round $round: scan ${scan_s} s, hand-written ${hand_s} s, ratio $(printf '%.2f' "$(echo "scale=4; $scan_s / $hand_s" | bc)") (rows: ${scan_print%% *})"
  scan_times+=("$scan_s") hand_times+=("$hand_s")
done

sum() { local t=0; for x in "$@"; do t=$(echo "$t + $x" | bc); done; echo "$t"; }
scan_total=$(sum "${scan_times[@]}") hand_total=$(sum "${hand_times[@]}")
echo
echo "machine:    $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), PostgreSQL $(psql_db -At -c 'SHOW server_version')"
echo "binary:     $BIN"
echo "preview:    ${preview_s} s (huzhu reminders preview, whole process)"
echo "scan:       ${scan_times[*]} s (huzhu reminders scan: ${ROWS} rows queued, in-process time)"
echo "hand:       ${hand_times[*]} s (one INSERT … SELECT in psql)"
echo "ratio:      $(printf '%.2f' "$(echo "scale=4; $scan_total / $hand_total" | bc)") (scan / hand-written, over ${ROUNDS} rounds)"
