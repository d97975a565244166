#!/usr/bin/env bash
# Copies the example rules to DEST without their targets, for the runs that
# measure the HR spine (import and sync); targets are measured by
# benches/export.sh.
#
#   benches/spine_rules.sh DEST      (DEST/example is written)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$1
mkdir -p "$dest"
cp -r rules/example "$dest/example"
rm -rf "$dest/example/targets"
python3 - "$dest/example/profiles.toml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r',\s*"export [^"]*"', "", s)
s = re.sub(r'\[\[profile\]\]\nname = "accounts"\n(?:(?!\[\[).*\n)*', "", s)
open(p, "w").write(s)
PY
