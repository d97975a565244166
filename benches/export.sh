#!/usr/bin/env bash
# Export benchmark: N generated people provisioned into a fresh OpenLDAP
# (slapd) and a fresh SCIM 2.0 server (scim2-server) by `idsync export`,
# against the same entries added by `ldapadd` from an LDIF file and the
# same users sent by a loop of plain POSTs on one keep-alive connection.
#
#   benches/export.sh [PEOPLE] [SEED]      (default 10000 42)
#   ONLY=ldap benches/export.sh            (the directory only)
#   PERF=1 ...                             (perf record of the LDAP export)
#
# Needs slapd and ldap-utils, and target/peers/scim-venv (see .ci/run).
# Work goes to target/export-PEOPLE/.
set -euo pipefail
cd "$(dirname "$0")/.."
people=${1:-10000}
seed=${2:-42}
out=$PWD/target/export-$people
scim_bin=${IDSYNC_SCIM_SERVER:-$PWD/target/peers/scim-venv/bin/scim2-server}
[ -x /usr/sbin/slapd ] || { echo "slapd is not installed (see .ci/run)"; exit 2; }
[ -x "$scim_bin" ] || { echo "scim2-server is not installed (see .ci/run)"; exit 2; }

cargo build --release --quiet
bin=$PWD/target/release/idsync
rm -rf "$out"
mkdir -p "$out/rules"
# The servers are started in command substitutions (subshells), so their
# pids go to a file rather than a variable.
pids=$out/.pids
cleanup() { [ -f "$pids" ] && kill $(cat "$pids") 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# A private slapd on a free port with an empty dc=example,dc=com.
start_slapd() {
    local dir=$1 port
    port=$(free_port)
    mkdir -p "$dir/data"
    cat > "$dir/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $dir/slapd.pid
database mdb
maxsize 1073741824
dbnosync
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw secret
directory $dir/data
sizelimit unlimited
index objectClass,uid,cn eq
index entryUUID eq
EOF
    /usr/sbin/slapd -d 0 -h "ldap://127.0.0.1:$port/" -f "$dir/slapd.conf" > "$dir/log" 2>&1 &
    echo $! >> "$pids"
    for _ in $(seq 100); do
        ldapsearch -x -H "ldap://127.0.0.1:$port" -b "" -s base > /dev/null 2>&1 && break
        sleep 0.05
    done
    ldapadd -x -H "ldap://127.0.0.1:$port" -D cn=admin,dc=example,dc=com -w secret > /dev/null <<EOF
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: ou=disabled,dc=example,dc=com
objectClass: organizationalUnit
ou: disabled
EOF
    echo "$port"
}

start_scim() {
    local dir=$1 port
    port=$(free_port)
    mkdir -p "$dir"
    "$scim_bin" --hostname 127.0.0.1 --port "$port" --bearer-token bench-token > "$dir/log" 2>&1 &
    echo $! >> "$pids"
    for _ in $(seq 200); do
        curl -fs -H "Authorization: Bearer bench-token" "http://127.0.0.1:$port/v2/Users?count=1" > /dev/null 2>&1 && break
        sleep 0.05
    done
    echo "$port"
}

echo "generating $people people and running the HR nightly ..."
"$bin" generate --people "$people" --seed "$seed" --out "$out" > /dev/null
cp -r rules/example "$out/rules/example"
ldap1=$(start_slapd "$out/ldap1")
scim1=$(start_scim "$out/scim1")
sed -i "s#ldap://127.0.0.1:3389#ldap://127.0.0.1:$ldap1#" "$out/rules/example/targets/"directory*.toml
sed -i "s#http://127.0.0.1:8080/v2#http://127.0.0.1:$scim1/v2#" "$out/rules/example/targets/"saas*.toml
export IDSYNC_LDAP_PASSWORD=secret IDSYNC_SCIM_TOKEN=bench-token
run() { "$bin" -q --rules "$out/rules/example" --store "$out/idsync.db" "$@"; }
run --json run nightly > "$out/nightly.json"

# The OUs the people's DNs name, made beforehand in both directories.
run --json export directory --dry-run > "$out/plan.json"
python3 - "$out/plan.json" > "$out/ous.ldif" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))[0]["plan"]
ous = sorted({op["name"].split(",", 1)[1] for op in plan if op["verb"] == "create"})
for dn in ous:
    if dn.lower() == "ou=people,dc=example,dc=com":
        continue
    ou = dn.split(",", 1)[0].split("=", 1)[1]
    print(f"dn: {dn}\nobjectClass: organizationalUnit\nou: {ou}\n")
PY
ldapadd -x -c -H "ldap://127.0.0.1:$ldap1" -D cn=admin,dc=example,dc=com -w secret -f "$out/ous.ldif" > /dev/null

t0=$(now)
if [ "${PERF:-0}" = 1 ]; then
    perf record -F 2000 -g -o "$out/perf-ldap.data" "$bin" -q --rules "$out/rules/example" --store "$out/idsync.db" --json export directory > "$out/export-ldap.json" 2> /dev/null
else
    IDSYNC_LOG=${IDSYNC_LOG:-info} "$bin" --rules "$out/rules/example" --store "$out/idsync.db" --json export directory > "$out/export-ldap.json" 2> "$out/export-ldap.log"
fi
t1=$(now)
ldap_n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["created"])' "$out/export-ldap.json")
ldap_idsync=$(secs "$t0" "$t1")

# The same entries as LDIF, added by ldapadd into a fresh directory.
ldapsearch -x -LLL -o ldif-wrap=no -H "ldap://127.0.0.1:$ldap1" -D cn=admin,dc=example,dc=com -w secret \
    -b ou=people,dc=example,dc=com "(objectClass=inetOrgPerson)" > "$out/people.ldif"
ldap2=$(start_slapd "$out/ldap2")
ldapadd -x -c -H "ldap://127.0.0.1:$ldap2" -D cn=admin,dc=example,dc=com -w secret -f "$out/ous.ldif" > /dev/null
t0=$(now)
ldapadd -x -H "ldap://127.0.0.1:$ldap2" -D cn=admin,dc=example,dc=com -w secret -f "$out/people.ldif" > /dev/null
t1=$(now)
ldap_plain=$(secs "$t0" "$t1")

# The confirming import reads every account back and compares it with the
# flows (drift, orphans); against reading the same entries with ldapsearch.
t0=$(now)
run --json import directory > "$out/confirm-ldap.json"
t1=$(now)
ldap_confirm=$(secs "$t0" "$t1")
t0=$(now)
ldapsearch -x -LLL -o ldif-wrap=no -H "ldap://127.0.0.1:$ldap1" -D cn=admin,dc=example,dc=com -w secret \
    -b dc=example,dc=com "(objectClass=inetOrgPerson)" '*' entryUUID > /dev/null
t1=$(now)
ldap_search=$(secs "$t0" "$t1")
python3 - "$out/confirm-ldap.json" <<PY
import json, sys
c = json.load(open(sys.argv[1]))
print(f"LDAP: confirming import of {c['read']:,} accounts $ldap_confirm s "
      f"(drift {c['drift_found']}, orphans {c['orphans']}, not re-imported {c['not_reimported']}); "
      f"ldapsearch of the same $ldap_search s")
PY

if [ "${ONLY:-}" = ldap ]; then
    python3 -c "print(f'LDAP: idsync export {$ldap_n:,} new accounts {$ldap_idsync:.2f} s; ldapadd -f people.ldif {$ldap_plain:.2f} s; ratio {$ldap_idsync / $ldap_plain:.2f}x')"
    exit 0
fi
t0=$(now)
run --json export saas > "$out/export-scim.json"
t1=$(now)
scim_n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["created"])' "$out/export-scim.json")
scim_idsync=$(secs "$t0" "$t1")

# The same users, POSTed one by one to a fresh server.
scim2=$(start_scim "$out/scim2")
scim_plain=$(python3 - "$scim1" "$scim2" <<'PY'
import http.client, json, sys, time
src, dst = int(sys.argv[1]), int(sys.argv[2])
auth = {"Authorization": "Bearer bench-token", "Content-Type": "application/scim+json"}
c = http.client.HTTPConnection("127.0.0.1", src)
users, start = [], 1
while True:
    c.request("GET", f"/v2/Users?startIndex={start}&count=500", headers=auth)
    page = json.loads(c.getresponse().read())
    users += page.get("Resources", [])
    start += 500
    if start > page["totalResults"]:
        break
bodies = []
for u in users:
    for k in ("id", "meta"):
        u.pop(k, None)
    ext = u.get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    if ext:
        ext.pop("manager", None)  # ids of the other server
    bodies.append(json.dumps(u))
d = http.client.HTTPConnection("127.0.0.1", dst)
t0 = time.time()
for b in bodies:
    d.request("POST", "/v2/Users", body=b, headers=auth)
    r = d.getresponse()
    r.read()
    assert r.status == 201, r.status
print(f"{time.time() - t0:.2f}")
PY
)

python3 - <<PY
rows = [
    ("LDAP", $ldap_n, $ldap_idsync, "ldapadd -f people.ldif", $ldap_plain),
    ("SCIM", $scim_n, $scim_idsync, "plain POST loop", $scim_plain),
]
for kind, n, ours, what, theirs in rows:
    print(f"{kind}: idsync export {n:,} new accounts {ours:.2f} s ({n / ours:,.0f}/s); "
          f"{what} {theirs:.2f} s; ratio {ours / theirs:.2f}x")
PY
