#!/usr/bin/env bash
# Delta cycle: on a store built by a full `run nightly` over N generated
# people (the scale run's data and rules), time a delta import of each agent
#   1. with the sources unchanged, then
#   2. with about 1 % of each source changed: in each file, attribute edits,
#      deleted rows and new rows; in the contractor database, rows updated
#      with a newer updated_at, soft-deleted rows and new rows.
# Prints each step's time, what it staged, and records/s.
#
#   benches/delta.sh [PEOPLE] [SEED] [PERCENT]     (default 1000000 42 1)
#
# Output goes to target/delta-PEOPLE/: base/ holds the generated sources and
# the store after the nightly run (kept for the next run of this script;
# FRESH=1 builds it again), work/ the copy each cycle changes. Each cycle
# starts from the nightly store; RUNS=N repeats each N times (the machine is
# shared: take the best). Each cycle ends with `idsync sync --delta`; the
# cycle's time is the imports' and the sync's together. Then the changed
# cycle runs as `idsync run delta`, one process; last, as `idsync schedule`
# runs it, in a process that keeps the store open between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
people=${1:-1000000}
seed=${2:-42}
percent=${3:-1}
out=target/delta-$people
base=$out/base
work=$out/work

cargo build --release --quiet
bin=$PWD/target/release/idsync
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

if [ "${FRESH:-0}" = 1 ] || [ ! -f "$base/idsync.db" ] || [ "$(cat "$base/seed" 2>/dev/null)" != "$seed" ]; then
    rm -rf "$out"
    mkdir -p "$base/rules"
    echo "building the base: generate $people people, run nightly ..."
    "$bin" generate --people "$people" --seed "$seed" --out "$base" >/dev/null
    # Same layout as the repository, so the example's relative paths resolve.
    benches/spine_rules.sh "$base/rules"
    t0=$(now)
    "$bin" -q --rules "$base/rules/example" --store "$base/idsync.db" --json run nightly > "$base/nightly.json"
    t1=$(now)
    echo "$seed" > "$base/seed"
    echo "nightly (full import + full sync): $(secs "$t0" "$t1") s"
    "$bin" -q --rules "$base/rules/example" --store "$base/idsync.db" runs show 1 --errors 0 | grep -E "^  [0-9]" || true
fi

rm -rf "$work"
cp -r "$base" "$work"
rules=$work/rules/example
store=$work/idsync.db
runs=${RUNS:-1}

# Back to the store the nightly run left. The copy's dirty pages would
# otherwise be written back during the commits measured.
restore() {
    rm -f "$store" "$store-wal" "$store-shm"
    cp "$base/idsync.db" "$store"
    sync
}

# One step, timed from the outside: process start, rules, store, commit.
step() {
    local label=$1
    shift
    local t0 t1
    t0=$(now)
    "$bin" -q --rules "$rules" --store "$store" --json "$@" > "$work/step.json"
    t1=$(now)
    python3 - "$label" "$t0" "$t1" "$work/step.json" >> "$work/steps.txt" <<'PY'
import json, sys
label, t0, t1, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
r = json.load(open(path))
secs = t1 - t0
c = r.get("counts")
if c:
    # A skipped file covers its whole space; otherwise what was read.
    rows = c["read"] or c["unchanged"]
    print(f"{label:28} {secs:6.3f} s  {r['how']:11} read {c['read']:>9,}  +{c['adds']:<6,} ~{c['updates']:<6,} -{c['deletes']:<6,} ={c['unchanged']:>9,}  {rows / secs:>12,.0f} records/s")
elif "counters" in r:
    k = r["counters"]
    changed = k["mv_adds"] + k["mv_updates"] + k["mv_deletes"]
    print(f"{label:28} {secs:6.3f} s  {r['mode']:11} objects {k['processed']:>9,}  identities changed {changed:,} (+{k['mv_adds']:,} ~{k['mv_updates']:,} -{k['mv_deletes']:,}, retained {k['mv_retained']:,})")
else:
    print(f"{label:28} {secs:6.3f} s")
PY
    tail -1 "$work/steps.txt"
}

cycle() {
    local name=$1
    echo "-- $name"
    : > "$work/steps.txt"
    for agent in workday sap contractors; do
        step "delta-import $agent" import "$agent" --delta --allow-deletes 1000000
    done
    awk '{ s += $3 } END { printf "%-28s %6.3f s\n", "delta imports together", s }' "$work/steps.txt"
    step "sync --delta" sync --delta --allow-deletes 1000000
    awk '{ s += $3 } END { printf "%-28s %6.3f s\n", "delta cycle (import + sync)", s }' "$work/steps.txt"
}

echo "people $people, seed $seed"
for run in $(seq "$runs"); do
    restore
    cycle "no change (run $run)"
done

echo "-- changing ${percent} % of each source ..."
python3 - "$work/fixtures/hr" "$seed" "$percent" <<'PY'
import csv, os, random, sqlite3, sys
d, seed, percent = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rng = random.Random(seed)
p = percent / 100

def change_file(name, encoding, delimiter, terminator, edit, new_row):
    """Streams the file: of each row, with probability p, 80 % are edited,
    10 % deleted, and 10 % get a new row after them."""
    path = f"{d}/{name}"
    counts, rows = [0, 0, 0], 0
    with open(path, newline="", encoding=encoding) as f, \
         open(path + ".new", "w", newline="", encoding=encoding) as g:
        reader = csv.reader(f, delimiter=delimiter)
        writer = csv.writer(g, delimiter=delimiter, lineterminator=terminator)
        writer.writerow(next(reader))
        for row in reader:
            rows += 1
            r = rng.random()
            if r < p * 0.8:
                edit(row)
                counts[0] += 1
            elif r < p * 0.9:
                counts[1] += 1
                continue
            writer.writerow(row)
            if p * 0.9 <= r < p:
                counts[2] += 1
                writer.writerow(new_row(row, counts[2]))
    os.replace(path + ".new", path)
    print(f"{name:16} {rows:>9,} rows: {counts[0]:,} edited, {counts[1]:,} deleted, {counts[2]:,} added")

def wd_edit(row):
    row[8] = "Senior " + row[8]      # Job_Title
def wd_new(row, i):
    row = list(row)
    row[0] = f"W{9000000 + i}"       # Worker_ID
    row[6] = f"new.hire{i}@example.com"
    return row
# utf-8-sig reads the byte-order mark and writes it back.
change_file("workday.csv", "utf-8-sig", ",", "\r\n", wd_edit, wd_new)

def sap_edit(row):
    row[12] = f"{(int(row[12] or 0) + 1):010d}"   # KOSTL
def sap_new(row, i):
    row = list(row)
    row[0] = f"9{i:07d}"             # PERNR
    row[5] = ""                      # no Workday id
    return row
change_file("sap_hr.csv", "latin-1", ";", "\n", sap_edit, sap_new)

con = sqlite3.connect(f"{d}/contractors.db")
ids = [r[0] for r in con.execute("SELECT contractor_id FROM contractor ORDER BY contractor_id")]
latest = con.execute("SELECT max(updated_at) FROM contractor").fetchone()[0]
stamp = f"{int(latest[:4]) + 1}{latest[4:]}"   # a year after the last change
k = max(1, round(len(ids) * p))
picked = rng.sample(ids, k)
edits, deletes, adds = picked[: k * 8 // 10], picked[k * 8 // 10 : k * 9 // 10], picked[k * 9 // 10 :]
con.executemany("UPDATE contractor SET agency = agency || ' Ltd', updated_at = ? WHERE contractor_id = ?",
                [(stamp, i) for i in edits])
con.executemany("UPDATE contractor SET deleted = 1, updated_at = ? WHERE contractor_id = ?",
                [(stamp, i) for i in deletes])
con.executemany(
    "INSERT INTO contractor SELECT ?, given_name, family_name, birth_date, 'x' || email, agency, "
    "sponsor_worker_id, start_date, end_date, status, ?, 0 FROM contractor WHERE contractor_id = ?",
    [(f"C-N{n:07d}", stamp, i) for n, i in enumerate(adds)])
con.commit()
print(f"{'contractors.db':16} {len(ids):>9,} rows: {len(edits):,} edited, {len(deletes):,} deleted, {len(adds):,} added (updated_at {stamp})")
PY
for run in $(seq "$runs"); do
    restore
    cycle "${percent} % changed (run $run)"
done
# The same cycle as one command: the delta profile in one process, where
# one step's checkpoint overlaps the next step's work. "steps" is the
# import and sync steps' own time from the run's report; the process time
# adds starting up and, at exit, copying the log back into the store.
for run in $(seq "$runs"); do
    restore
    : > "$work/steps.txt"
    step "run delta (run $run)" run delta --allow-deletes 1000000
    python3 - "$work/step.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
steps = sum(s["ms"] for s in r["steps"]) / 1000
print(f"{'  import + sync steps':28} {steps:6.3f} s  (the run {r['ms'] / 1000:.3f} s)")
PY
done

# The cycle as `idsync schedule` runs it in production: one long-lived
# process that keeps the store open between runs. A scheduler starts on
# the nightly store with the sources as they were; its first run finds
# nothing changed; then the changed sources are put in place and its next
# run is the one timed, from the report it prints.
sched=$out/sched
for run in $(seq "$runs"); do
    rm -rf "$sched"
    mkdir -p "$sched"
    cp -r "$base/rules" "$base/fixtures" "$sched/"
    cp "$base/idsync.db" "$sched/"
    cat > "$sched/rules/example/bench-schedule.toml" <<'TOML'
[[schedule]]
profile = "delta"
every = "15s"
TOML
    sync
    "$bin" -q --rules "$sched/rules/example" --store "$sched/idsync.db" --json \
        --allow-deletes 1000000 schedule --profile delta > "$sched/reports.jsonl" &
    pid=$!
    # Until the scheduler has reported N runs (or stopped).
    reports() {
        until [ "$(wc -l < "$sched/reports.jsonl")" -ge "$1" ]; do
            kill -0 "$pid" 2>/dev/null || { echo "the scheduler stopped" >&2; exit 1; }
            sleep 0.2
        done
    }
    reports 1
    for f in workday.csv sap_hr.csv contractors.db; do
        cp "$work/fixtures/hr/$f" "$sched/fixtures/hr/$f.new"
        mv "$sched/fixtures/hr/$f.new" "$sched/fixtures/hr/$f"
    done
    reports 2
    kill -TERM "$pid"
    wait "$pid" || true
    python3 - "$sched/reports.jsonl" "$run" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[1])
steps = sum(s["ms"] for s in r["steps"]) / 1000
parts = ", ".join(f"{s['step']} {s['ms'] / 1000:.3f}" for s in r["steps"])
print(f"{'schedule: delta (run ' + sys.argv[2] + ')':28} {steps:6.3f} s  ({parts})")
PY
done
