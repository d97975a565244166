#!/usr/bin/env bash
# Fuzzy join at scale: RECORDS unkeyed records of a new agent, `legacy` (an
# acquired company's payroll, keyed in by hand, with no worker id: given
# name, family name and a birth date in four formats, with typos, short
# forms, other spellings, swapped, one-off and missing dates), matched by a
# [fuzzy_join] against the metaverse a full `run nightly` built over PEOPLE
# generated people. Three in four records are people of that metaverse, the
# rest are new (see src/gen/unkeyed.rs).
#
#   benches/fuzzy_scale.sh [PEOPLE] [RECORDS] [SEED]    (default 1000000 100000 42)
#
#   FRESH=1         build the base store again
#   NAMES_KEY=1     a third blocking key, Soundex of surname and given name, which
#                   also compares records whose birth date is missing or a year off
#   WEIGHTS=train   train the weights by EM (`idsync train-join legacy`) after
#                   the import instead of using the hand-set ones below (the
#                   rules/README.md example's); see README.md for how the two
#                   compare
#
# Output goes to target/fuzzy-scale-PEOPLE/:
#   base/  the generated HR sources and the store after `run nightly` over the
#          spine rules, exactly as benches/scale.sh builds it, kept for the
#          next run of this script (it is rebuilt when the seed differs; after
#          a change to the generator or the example rules, FRESH=1 rebuilds it,
#          or the truth's anchors would name other people). target/scale-N is
#          not reused: scale.sh deletes it on every run and does not record its
#          seed.
#   work/  a copy of the base with legacy.csv, its truth (legacy_truth.csv),
#          the agent's rule file, the metaverse's sync order and precedence
#          extended; sync.log holds the sync's per-phase timings
#          (IDSYNC_LOG=debug) and rss.* each step's peak RSS.
#
# Steps, each timed from process start to exit (peak RSS by /usr/bin/time):
#   import legacy           full import of the records
#   train-join legacy       with WEIGHTS=train only: EM over the unjoined records
#                           against the metaverse, writes [fuzzy_join.weights]
#   check                   the rules load; each blocking key's pairs and largest block
#   sync                    a full sync (the rules changed, so a delta sync would
#                           run as a full one too): the fuzzy join, then every
#                           identity recomputed
# Then joins, reviews and projections of the legacy records, scored against
# the truth. The store is read read-only with python's sqlite3 for that: the
# command line has no bulk listing of links.
set -euo pipefail
cd "$(dirname "$0")/.."
people=${1:-1000000}
records=${2:-100000}
seed=${3:-42}
out=target/fuzzy-scale-$people
base=$out/base
work=$out/work

cargo build --release --quiet
bin=$PWD/target/release/idsync
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

if [ "${FRESH:-0}" = 1 ] || [ ! -f "$base/idsync.db" ] || [ "$(cat "$base/seed" 2>/dev/null)" != "$seed" ]; then
    rm -rf "$out"
    mkdir -p "$base/rules"
    echo "building the base: generate $people people, run nightly ..."
    t0=$(now)
    "$bin" generate --people "$people" --seed "$seed" --out "$base" >/dev/null
    t1=$(now)
    benches/spine_rules.sh "$base/rules"
    "$bin" -q --rules "$base/rules/example" --store "$base/idsync.db" --json run nightly > "$base/nightly.json"
    t2=$(now)
    echo "$seed" > "$base/seed"
    echo "generate $(secs "$t0" "$t1") s, nightly (full import + full sync) $(secs "$t1" "$t2") s"
fi

rm -rf "$work"
mkdir -p "$work"
cp -r "$base/fixtures" "$base/rules" "$work/"
cp "$base/idsync.db" "$work/idsync.db"
sync
rules=$work/rules/example
store=$work/idsync.db

t0=$(now)
"$bin" --json generate --people "$people" --seed "$seed" --out "$work" --unkeyed "$records" > "$work/generate.json"
t1=$(now)
python3 - "$work/generate.json" "$(secs "$t0" "$t1")" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
print(f"unkeyed records        {sys.argv[2]} s: {g['records']:,} records, {g['known']:,} of people with an identity ({g['noisy']:,} with noise), {g['new']:,} new")
PY

# The new agent. Lowest precedence: it only fills what no HR system has.
cat > "$rules/agents/legacy.toml" <<'TOML'
# An acquired company's payroll, keyed in by hand: no worker id, names
# and birth dates as the clerks typed them, dates in four formats.

[agent]
name = "legacy"
kind = "csv"
object_type = "person"
anchor = "EMP_NO"
path = "../../../fixtures/hr/legacy.csv"

# No exact key: every record goes to the fuzzy join.
[fuzzy_join]
name = "by-person"
fields = [
  { cs = "LAST_NAME", mv = "sn", kind = "name", levels = ["normalised", { jaro-winkler = 0.92 }, { jaro-winkler = 0.8 }], term_frequency = true },
  { cs = 'Word(FIRST_NAME, 1, " ")', mv = "givenName", kind = "name", levels = ["normalised", { jaro-winkler = 0.92 }, "initial"] },
  { cs = "BIRTH_DATE", mv = "birthDate", kind = "date", levels = ["exact", "date-one-off", "date-swapped"], review_from = "date-swapped" },
]
blocking = [
  { name = "dob", parts = [{ field = "birthDate", transform = "whole" }] },
  { name = "sound+year", parts = [{ field = "sn", transform = "soundex" }, { field = "birthDate", transform = "year" }] },
]
thresholds = { join = 10.0, review = 4.0, margin = 5.0 }

[projection]
enabled = true

[flows.import]
legacyId = "EMP_NO"
givenName = "PCase(FIRST_NAME)"
sn = "PCase(LAST_NAME)"
displayName = 'PCase(FIRST_NAME) & " " & PCase(LAST_NAME)'
# DD.MM.YYYY, DD/MM/YYYY and YYYYMMDD to ISO; ISO stays.
birthDate = 'ReplaceRegex(ReplaceRegex(BIRTH_DATE, "^(\d\d)[./](\d\d)[./](\d{4})$", "$3-$2-$1"), "^(\d{4})(\d\d)(\d\d)$", "$1-$2-$3")'
TOML
if [ "${NAMES_KEY:-0}" = 1 ]; then
    python3 - "$rules/agents/legacy.toml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
year = '{ field = "birthDate", transform = "year" }] },\n'
names = '  { name = "names", parts = [{ field = "sn", transform = "soundex" }, { field = "givenName", transform = "soundex" }] },\n'
assert year in s
s = s.replace(year, year + names, 1)
open(p, "w").write(s)
PY
fi
if [ "${WEIGHTS:-hand}" = hand ]; then
    python3 - "$rules/agents/legacy.toml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
weights = '''
# Set by hand: per field m and u of each level and "else".
[fuzzy_join.weights]
lambda = 0.0001
fields = [
  { m = [0.85, 0.1, 0.03, 0.02], u = [0.003, 0.01, 0.05, 0.937] },
  { m = [0.85, 0.08, 0.065, 0.005], u = [0.005, 0.01, 0.02, 0.965] },
  { m = [0.95, 0.02, 0.01, 0.02], u = [0.00005, 0.002, 0.0001, 0.99785] },
]
'''
s = s.replace("\n[projection]", weights + "\n[projection]", 1)
open(p, "w").write(s)
PY
fi
python3 - "$rules/metaverse.toml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = s.replace('sync_order = ["workday", "sap", "contractors"]', 'sync_order = ["workday", "sap", "contractors", "legacy"]', 1)
s = s.replace('precedence = ["workday", "sap", "contractors"]', 'precedence = ["workday", "sap", "contractors", "legacy"]', 1)
s = s.replace('contractorId = "string"\n', 'contractorId = "string"\nlegacyId = "string"\n', 1)
assert s.count('"legacy"') == 2 and "legacyId" in s
open(p, "w").write(s)
PY

# One step: wall time from process start to exit, peak RSS, JSON output.
step() {
    local label=$1
    shift
    local t0 t1 rss
    t0=$(now)
    /usr/bin/time -f "%M" -o "$work/rss.$label" "$bin" --rules "$rules" --store "$store" "$@" > "$work/$label.out" 2> "$work/$label.log"
    t1=$(now)
    rss=$(tail -1 "$work/rss.$label")
    printf "%-22s %7s s   peak RSS %5d MiB\n" "$label" "$(secs "$t0" "$t1")" $((rss / 1024)) | tee -a "$work/steps.txt"
}

echo "people $people, records $records, seed $seed"
: > "$work/steps.txt"
step import --json import legacy
if [ "${WEIGHTS:-hand}" != hand ]; then
    step train-join --json train-join legacy
fi
step check check
grep -E "fuzzy join|blocking key" "$work/check.out" || true
IDSYNC_LOG=debug step sync --json sync

python3 - "$work" "$store" <<'PY'
import collections, csv, json, sqlite3, sys
work, store = sys.argv[1], sys.argv[2]
imp = json.load(open(f"{work}/import.out"))
sync = json.load(open(f"{work}/sync.out"))
k = sync["counters"]
print(f"import                 {imp['counts']['read']:,} read, {imp['counts']['adds']:,} staged")
print(f"sync counters          joins {k['joins']:,}, projections {k['mv_adds']:,}, ambiguous {k['ambiguous']:,}, identities updated {k['mv_updates']:,}")
try:
    tj = json.load(open(f"{work}/train-join.out"))
    print(f"train-join             {tj['iterations']} iterations, converged {tj['converged']}")
except (FileNotFoundError, ValueError):
    pass

truth = {}
for r in csv.DictReader(open(f"{work}/fixtures/hr/legacy_truth.csv")):
    truth[r["EMP_NO"]] = (r["truth"].split("|") if r["truth"] else [], r["noise"].split("|") if r["noise"] else [], int(r["namesakes"]))
wanted = {a for t, _, _ in truth.values() for a in t}

db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
mv_of = {}
for agent, anchor, mv in db.execute(
        "SELECT c.agent, c.anchor, l.mv_id FROM cs_object c JOIN link l ON l.cs_id = c.id "
        "WHERE c.agent IN ('workday', 'sap', 'contractors')"):
    key = f"{agent}:{anchor}"
    if key in wanted:
        mv_of[key] = mv
link = {a: (mv, kind) for a, mv, kind in db.execute(
    "SELECT c.anchor, l.mv_id, l.kind FROM cs_object c LEFT JOIN link l ON l.cs_id = c.id WHERE c.agent = 'legacy'")}
review = {a: json.loads(c) for a, c in db.execute("SELECT anchor, candidates FROM ambiguous_join WHERE agent = 'legacy'")}

outcome = {}
for rec, (anchors, noise, _) in truth.items():
    ids = {mv_of[a] for a in anchors if a in mv_of}
    mv, kind = link.get(rec, (None, None))
    known = bool(ids)
    if rec in review:
        o = "review (true identity among candidates)" if ids & set(review[rec]) else "review"
    elif kind == "joined":
        o = "joined, right" if mv in ids else "joined, WRONG"
    elif kind == "projected":
        o = "projected"
    else:
        o = "unlinked"
    outcome[rec] = (known, o)

known = [r for r, (kn, _) in outcome.items() if kn]
new = [r for r, (kn, _) in outcome.items() if not kn]
lost = sum(1 for t, _, _ in truth.values() if t) - len(known)
def tally(recs):
    return collections.Counter(outcome[r][1] for r in recs)
tk, tn = tally(known), tally(new)
right = tk["joined, right"]
joins = right + tk["joined, WRONG"] + tn["joined, WRONG"]
print(f"records of known people {len(known):,}" + (f" ({lost} whose person has no identity counted as new)" if lost else ""))
for o, n in sorted(tk.items()):
    print(f"  {o:42} {n:>8,}  {n / len(known):6.1%}")
print(f"records of new people   {len(new):,}")
for o, n in sorted(tn.items()):
    print(f"  {o:42} {n:>8,}  {n / max(len(new), 1):6.1%}")
print(f"joins                  {joins:,}: {right:,} right, {joins - right:,} wrong")
print(f"precision              {right / max(joins, 1):.4f}")
print(f"recall (joined)        {right / max(len(known), 1):.4f}")
ok_review = tk["review (true identity among candidates)"]
print(f"recall (joined or in review with the true identity) {(right + ok_review) / max(len(known), 1):.4f}")

# Per kind of noise (a record may have several): what became of the known records.
print("by noise (known people):            n   joined  review  projected  wrong")
tags = collections.defaultdict(list)
for r in known:
    for t in truth[r][1] or ["none"]:
        tags[t].append(r)
for t, recs in sorted(tags.items(), key=lambda x: -len(x[1])):
    c = tally(recs)
    n = len(recs)
    rv = c["review"] + c["review (true identity among candidates)"]
    print(f"  {t:28} {n:>8,}  {c['joined, right'] / n:6.1%}  {rv / n:6.1%}  {c['projected'] / n:8.1%}  {c['joined, WRONG'] / n:6.1%}")

# Wrong joins, a few side by side.
rows = {r["EMP_NO"]: r for r in csv.DictReader(open(f"{work}/fixtures/hr/legacy.csv"))}
wrong = [r for r in sorted(outcome) if outcome[r][1] == "joined, WRONG"]
if wrong:
    print(f"wrong joins (first 12 of {len(wrong):,}): record -> identity joined [truth]")
    for r in wrong[:12]:
        mv = link[r][0]
        attrs = json.loads(db.execute("SELECT attrs FROM mv_object WHERE id = ?", (mv,)).fetchone()[0])
        def val(a):
            v = attrs.get(a)
            return v[0] if isinstance(v, list) and v else v
        x = rows[r]
        t, noise, same = truth[r]
        print(f"  {r} {x['FIRST_NAME']} {x['LAST_NAME']} {x['BIRTH_DATE'] or '-'} -> {mv} {val('givenName')} {val('sn')} {val('birthDate')}"
              f"  [{'new' if not t else 'known'}; {','.join(noise) or 'no noise'}; namesakes {same}]")
PY
echo "per-phase timings of the sync (IDSYNC_LOG=debug): $work/sync.log"
grep -E "Sync: |Fuzzy|fuzzy" "$work/sync.log" | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-220 || true
