#!/usr/bin/env bash
# Scale run: generate N people across the three HR sources (seeded), then a
# full import of each and a full sync on a fresh store, with the bundled
# example rules. Prints records/s and peak memory.
#
#   benches/scale.sh [PEOPLE] [SEED]        (default 1000000 42)
#
# Output goes to target/scale-PEOPLE/ (data, store, run.json).
set -euo pipefail
cd "$(dirname "$0")/.."
people=${1:-1000000}
seed=${2:-42}
out=target/scale-$people

cargo build --release --quiet
bin=target/release/idsync
rm -rf "$out"
mkdir -p "$out/rules"
start=$(date +%s.%N)
"$bin" generate --people "$people" --seed "$seed" --out "$out" >/dev/null
gen_end=$(date +%s.%N)
# Same layout as the repository, so the example's relative paths resolve;
# the HR spine only.
benches/spine_rules.sh "$out/rules"

measure() {
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "%M" -o "$out/rss.txt" "$@"
    else
        "$@"
        echo 0 > "$out/rss.txt"
    fi
}
run_start=$(date +%s.%N)
measure "$bin" -q --rules "$out/rules/example" --store "$out/idsync.db" --json run nightly > "$out/run.json"
run_end=$(date +%s.%N)

python3 - "$out" "$people" "$start" "$gen_end" "$run_start" "$run_end" <<'PY'
import json, sys
out, people, s, g, rs, re_ = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
run = json.load(open(f"{out}/run.json"))
rss_kb = int(open(f"{out}/rss.txt").read().split()[-1] or 0)
records = sum(st["import"]["counts"]["read"] for st in run["steps"] if st.get("import"))
sync = next(st["sync"]["counters"] for st in run["steps"] if st.get("sync"))
secs = re_ - rs
print(f"people            {people:,}")
print(f"source records    {records:,}")
print(f"generate          {g - s:.1f} s")
print(f"import + sync     {secs:.1f} s  ({records / secs:,.0f} records/s)")
print(f"metaverse         {sync['mv_adds']:,} identities, {sync['joins']:,} joins, {sync['ambiguous']:,} ambiguous")
print(f"peak RSS          {rss_kb / 1024:,.0f} MiB")
for st in run["steps"]:
    print(f"  step {st['step']:24} {st['status']}")
PY
# Per-step durations as the run history recorded them.
"$bin" -q --rules "$out/rules/example" --store "$out/idsync.db" runs show 1 --errors 0 | grep -E "^  [0-9]"
