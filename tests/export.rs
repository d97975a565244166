//! Provisioning and export to the file and SQL table targets, through the
//! binary, over the bundled example's two days (see `fixtures/README.md`):
//! joiners get accounts, a mover's change arrives, a leaver is disabled in
//! the application and loses the badge, a rehire gets them back, an
//! account made by hand is joined instead of duplicated, a target that
//! cannot be reached keeps its work, and a confirming import flags a change
//! that did not arrive and an account deleted by hand.

mod common;
use common::*;
use serde_json::Value;

const DAY1: &str = "2026-11-23T02:00:00Z";
const DAY2: &str = "2026-11-24T02:00:00Z";

/// An application's account table, provisioned from the metaverse.
const APP_TARGET: &str = r#"
[target]
name = "app"
kind = "sql"
object_type = "person"
path = "../../app.db"
table = "accounts"
key = "login"

[provision]
scope = 'lifecycle <> "leaver"'
name = "accountName"
match = "login"

[deprovision]
action = "disable"
set = { status = '"disabled"' }

[flows.export]
login = "accountName"
mail = "mail"
dept = "department"
status = 'IIF(lifecycle = "active", "active", lifecycle)'
manager = { ref = "manager" }
"#;

fn env() -> Env {
    let e = example_env();
    e.write("rules/targets/app.toml", APP_TARGET);
    let db = rusqlite::Connection::open(e.path("app.db")).expect("app.db");
    db.execute_batch(
        "CREATE TABLE accounts(login TEXT PRIMARY KEY, mail TEXT, dept TEXT, status TEXT, manager TEXT);
         -- Made by hand before idsync ran: must be joined, not duplicated.
         INSERT INTO accounts VALUES ('sdubois', 'old@example.com', NULL, 'active', NULL);",
    )
    .expect("app table");
    e
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn json(out: std::process::Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// login -> (mail, dept, status, manager)
type Row = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn app_rows(e: &Env) -> std::collections::BTreeMap<String, Row> {
    let db = rusqlite::Connection::open(e.path("app.db")).expect("app.db");
    let mut stmt = db
        .prepare("SELECT login, mail, dept, status, manager FROM accounts")
        .expect("select");
    stmt.query_map([], |r| {
        Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
    })
    .expect("rows")
    .collect::<rusqlite::Result<_>>()
    .expect("rows")
}

/// badge id -> department, from the badge file.
fn badges(e: &Env) -> std::collections::BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(e.path("out/badges.csv")).expect("badges.csv");
    let h = r.headers().expect("header").clone();
    let dept = h
        .iter()
        .position(|c| c == "department")
        .expect("department");
    r.records()
        .map(|x| {
            let x = x.expect("row");
            (x[0].to_string(), x[dept].to_string())
        })
        .collect()
}

fn day2(e: &Env) {
    hr_day(e, "fixtures/hr/day2");
}

#[test]
fn accounts_follow_the_lifecycle_in_files_and_tables() {
    let e = env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));

    // Day 1. The badge file has active people only, written by the profile.
    let b = badges(&e);
    assert_eq!(b.get("W100005").map(String::as_str), Some("Finance"));
    assert!(b.contains_key("W100007"), "José is active on day 1");
    assert!(!b.contains_key("W100013"), "Priya left before day 1");

    // The plan lists the application's accounts before anything is written.
    let plan = json(e.idsync(&["--json", "export", "app", "--dry-run"]));
    let ops = plan[0]["plan"].as_array().expect("plan");
    assert!(ops.iter().all(|o| o["verb"] == "create"), "{plan}");
    assert!(ops.iter().any(|o| o["name"] == "sdubois"));
    assert_eq!(app_rows(&e).len(), 1, "a dry run writes nothing");

    let r = json(e.idsync(&["--as-of", DAY1, "--json", "export", "app"]));
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["joined"], 1, "the hand-made sdubois is joined: {r}");
    let rows = app_rows(&e);
    assert_eq!(rows.len() as u64, r["created"].as_u64().unwrap() + 1);
    let sophie = &rows["sdubois"];
    assert_eq!(sophie.0.as_deref(), Some("sophie.dubois@example.com"));
    assert_eq!(sophie.1.as_deref(), Some("Finance"));
    // References are written as the referenced account's name: Sophie's
    // manager's login, exported before her.
    let boss = sophie.3.clone().expect("Sophie has a manager");
    assert!(rows.contains_key(&boss), "{boss} is an account too");
    assert!(rows.contains_key("jhernandez"), "José has an account");

    // Nothing left to do: a second export changes nothing.
    let again = json(e.idsync(&["--as-of", DAY1, "--json", "export", "app"]));
    assert_eq!(
        (again["created"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );

    // The confirming import finds every exported value.
    let c = json(e.idsync(&["--json", "import", "app"]));
    assert_eq!(c["not_reimported"], 0, "{c}");
    assert_eq!(c["missing"], 0);
    assert!(c["confirmed"].as_u64().unwrap() > 100, "{c}");

    // Day 2: movers, leavers, rehires, joiners.
    day2(&e);
    ok(e.idsync(&["--as-of", DAY2, "run", "nightly"]));
    let plan = json(e.idsync(&["--json", "export", "app", "--dry-run"]));
    let verbs: Vec<(String, String)> = plan[0]["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["verb"].as_str().unwrap().into(),
                o["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        verbs.contains(&("update".into(), "sdubois".into())),
        "{verbs:?}"
    );
    assert!(
        verbs.contains(&("disable".into(), "jhernandez".into())),
        "{verbs:?}"
    );
    assert!(
        verbs.contains(&("create".into(), "tzielinski".into())),
        "{verbs:?}"
    );
    let r = json(e.idsync(&["--as-of", DAY2, "--json", "export", "app"]));
    assert_eq!(r["failed"], 0, "{r}");
    let rows = app_rows(&e);
    assert_eq!(rows["sdubois"].1.as_deref(), Some("Treasury"), "mover");
    assert_eq!(rows["jhernandez"].2.as_deref(), Some("disabled"), "leaver");
    assert_eq!(rows["tzielinski"].2.as_deref(), Some("active"), "joiner");
    assert_eq!(rows["imoreau"].2.as_deref(), Some("prehire"), "pre-hire");
    assert_eq!(rows["psharma"].2.as_deref(), Some("active"), "rehire");
    let b = badges(&e);
    assert_eq!(b.get("W100005").map(String::as_str), Some("Treasury"));
    assert!(!b.contains_key("W100007"), "a leaver's badge goes");
    assert!(b.contains_key("W100013"), "a rehire's badge comes back");
    assert!(!b.contains_key("W100101"), "no badge before the first day");

    // What each export did is listed object by object.
    let runs = json(e.idsync(&["--json", "runs"]));
    let last = runs[0]["run"]["id"].as_i64().unwrap().to_string();
    let shown = json(e.idsync(&["--json", "runs", "show", &last, "--changes"]));
    let changes = shown["steps"][0]["changes"].as_array().expect("changes");
    assert!(
        changes
            .iter()
            .any(|c| c["kind"] == "exported-disable" && c["anchor"] == "jhernandez"),
        "{changes:?}"
    );
}

#[test]
fn a_target_that_cannot_be_reached_keeps_its_work_and_a_confirming_import_checks_it() {
    let e = env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    // The application's database is being restored: its table is gone.
    let db = rusqlite::Connection::open(e.path("app.db")).expect("app.db");
    db.execute_batch("ALTER TABLE accounts RENAME TO accounts_old")
        .expect("rename");
    let out = e.idsync(&["--as-of", DAY1, "export", "app"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no table \"accounts\""),
        "{}",
        stderr(&out)
    );
    let status = json(e.idsync(&["--json", "status"]));
    let app = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "app")
        .expect("app in status")
        .clone();
    let pending = app["pending_exports"].as_u64().unwrap();
    assert!(pending > 30, "{app}");

    // Back: the same work is done, once.
    db.execute_batch("ALTER TABLE accounts_old RENAME TO accounts")
        .expect("rename back");
    let r = json(e.idsync(&["--as-of", DAY1, "--json", "export", "app"]));
    assert_eq!(
        r["created"].as_u64().unwrap() + r["joined"].as_u64().unwrap(),
        pending
    );
    assert_eq!(app_rows(&e).len() as u64, pending);

    // Changed by hand before the confirming import: flagged, with the
    // attribute and both values. Deleted by hand: created again.
    db.execute_batch(
        "UPDATE accounts SET dept = 'Sales' WHERE login = 'sdubois';
         DELETE FROM accounts WHERE login = 'tbrandt';",
    )
    .expect("hand changes");
    let c = json(e.idsync(&["--json", "import", "app"]));
    assert_eq!(c["not_reimported"], 1, "{c}");
    assert_eq!(c["missing"], 1, "{c}");
    let runs = json(e.idsync(&["--json", "runs"]));
    let last = runs[0]["run"]["id"].as_i64().unwrap().to_string();
    let shown = json(e.idsync(&["--json", "runs", "show", &last]));
    let errors = shown["steps"][0]["errors"].as_array().expect("errors");
    let flag = errors
        .iter()
        .find(|x| x["kind"] == "exported-change-not-reimported")
        .expect("flagged");
    assert_eq!(flag["anchor"], "sdubois");
    let msg = flag["message"].as_str().unwrap();
    assert!(
        msg.contains("dept") && msg.contains("Finance") && msg.contains("Sales"),
        "{msg}"
    );
    let r = json(e.idsync(&["--as-of", DAY1, "--json", "export", "app"]));
    assert_eq!(r["created"], 1, "{r}");
    assert!(app_rows(&e).contains_key("tbrandt"));
}

#[test]
fn a_scope_gone_wrong_is_stopped_by_the_deletion_guard() {
    let e = env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    let before = badges(&e);
    assert!(before.len() > 30);
    // A typo in the scope: nobody qualifies for a badge any more. Changing
    // a target's rules makes the next sync look at every identity for it.
    let p = e.path("rules/targets/badges.toml");
    let text = std::fs::read_to_string(&p).expect("read");
    std::fs::write(
        &p,
        text.replace(r#"lifecycle = "active""#, r#"lifecycle = "actve""#),
    )
    .expect("write");
    ok(e.idsync(&["--as-of", DAY1, "sync", "--delta"]));
    let out = e.idsync(&["--as-of", DAY1, "export", "badges"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("deletion guard") && err.contains("--allow-deletes"),
        "{err}"
    );
    assert_eq!(badges(&e), before, "nothing was deleted");
    let n = before.len().to_string();
    ok(e.idsync(&["--as-of", DAY1, "--allow-deletes", &n, "export", "badges"]));
    assert!(badges(&e).is_empty(), "deleted when the admin allows it");
}

/// The computed groups, written as a file of group name and member badges.
const GROUP_FILE: &str = r#"
[target]
name = "group-file"
kind = "csv"
object_type = "group"
path = "../../out/groups.csv"
key = "group"

[provision]
name = "name"

[flows.export]
title = "displayName"
members = { ref = "member", in = "badges" }
"#;

/// group -> member badge ids
fn groups_file(e: &Env) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut r = csv::Reader::from_path(e.path("out/groups.csv")).expect("groups.csv");
    r.records()
        .map(|x| {
            let x = x.expect("row");
            let members = x[1]
                .split('|')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            (x[0].to_string(), members)
        })
        .collect()
}

#[test]
fn groups_follow_departments_and_their_members_are_exported_as_references() {
    let e = env();
    e.write("rules/targets/groups.toml", GROUP_FILE);
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    let r = json(e.idsync(&["--as-of", DAY1, "--json", "export", "group-file"]));
    assert_eq!(r["failed"], 0, "{r}");
    let g = groups_file(&e);
    assert!(g["dept-finance"].contains(&"W100005".to_string()), "{g:?}");
    assert!(!g.contains_key("dept-treasury"));
    assert!(g["all-employees"].len() > 25);
    assert!(
        !g["all-employees"].contains(&"W100013".to_string()),
        "a leaver is in no group"
    );

    day2(&e);
    let out = ok(e.idsync(&["--as-of", DAY2, "run", "nightly"]));
    assert!(out.contains("groups departments"), "{out}");
    let plan = json(e.idsync(&["--json", "export", "group-file", "--dry-run"]));
    let ops = plan[0]["plan"].as_array().expect("plan");
    assert!(
        ops.iter()
            .any(|o| o["verb"] == "create" && o["name"] == "dept-treasury"),
        "{plan}"
    );
    assert!(
        ops.iter().any(|o| o["name"] == "dept-finance"
            && o["changes"].as_array().unwrap().iter().any(|c| {
                let c = c.as_str().unwrap_or("");
                c.starts_with("members -= ") && c.contains("W100005")
            })),
        "member removed, not the whole list replaced: {plan}"
    );
    ok(e.idsync(&["--as-of", DAY2, "export", "group-file"]));
    let g = groups_file(&e);
    assert_eq!(g["dept-treasury"], vec!["W100005".to_string()]);
    assert!(!g["dept-finance"].contains(&"W100005".to_string()));
    assert!(
        !g["all-employees"].contains(&"W100007".to_string()),
        "leaver left"
    );
    assert!(
        g["all-employees"].contains(&"W100013".to_string()),
        "rehire back"
    );
}

#[test]
fn a_target_failing_most_exports_is_quarantined_until_one_succeeds() {
    let e = env();
    // The application refuses every row (a constraint its admins added).
    let db = rusqlite::Connection::open(e.path("app.db")).expect("app.db");
    db.execute_batch(
        "DROP TABLE accounts;
         CREATE TABLE accounts(login TEXT PRIMARY KEY, mail TEXT, dept TEXT, status TEXT, manager TEXT,
                               CHECK (length(login) > 40));",
    )
    .expect("strict table");
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    let out = e.idsync(&["--as-of", DAY1, "--json", "export", "app"]);
    assert!(!out.status.success(), "a quarantining run fails");
    assert!(stderr(&out).contains("quarantined"), "{}", stderr(&out));
    let status = json(e.idsync(&["--json", "status"]));
    let app = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "app")
        .cloned()
        .expect("app");
    assert!(app["quarantined"].as_str().is_some(), "{app}");
    let failing = app["failing"].as_u64().unwrap();
    assert!(failing > 30, "{app}");

    // Quarantined: the next run tries one account, fails, and stops.
    let out = e.idsync(&["--as-of", DAY1, "export", "app"]);
    assert!(!out.status.success());
    let runs = json(e.idsync(&["--json", "runs"]));
    let counters = &runs[0]["steps"][0]["counters"];
    assert_eq!(counters["failed"], 1, "{counters}");

    // Fixed: the probe succeeds, the quarantine lifts, the rest follows.
    db.execute_batch(
        "DROP TABLE accounts;
         CREATE TABLE accounts(login TEXT PRIMARY KEY, mail TEXT, dept TEXT, status TEXT, manager TEXT);",
    )
    .expect("table fixed");
    let r = json(e.idsync(&["--as-of", DAY1, "--json", "export", "app"]));
    assert!(r["quarantined"].is_null(), "{r}");
    assert_eq!(r["created"].as_u64(), Some(failing), "{r}");
    assert_eq!(app_rows(&e).len() as u64, failing);
}

#[test]
fn a_new_store_over_an_old_file_joins_its_rows_by_the_key_column() {
    let e = example_env();
    let first = json(e.idsync(&[
        "--json",
        "--as-of",
        "2026-11-23T02:00:00Z",
        "run",
        "nightly",
    ]));
    assert_eq!(first["status"], "success", "{first}");
    let before = badges(&e);
    assert!(before.len() > 25);
    // The store is gone; the badge file is not.
    for f in ["idsync.db", "idsync.db-wal", "idsync.db-shm"] {
        let _ = std::fs::remove_file(e.path(f));
    }
    let again = json(e.idsync(&[
        "--json",
        "--as-of",
        "2026-11-23T02:00:00Z",
        "run",
        "nightly",
    ]));
    assert_eq!(again["status"], "success", "{again}");
    let r = json(e.idsync(&["--json", "runs", "--limit", "1"]));
    let steps = r[0]["steps"].as_array().expect("steps");
    let badge_step = steps
        .iter()
        .find(|s| s["name"] == "export badges")
        .expect("export badges");
    let c = &badge_step["counters"];
    assert_eq!(c["joined"].as_u64(), Some(before.len() as u64), "{c}");
    assert_eq!(c["created"], 0, "{c}");
    assert_eq!(badges(&e), before, "the file is the same");
}

/// The application assigns each account a phone extension; a file for HR
/// gets it back through an account flow reading that column, once a
/// confirming import of the application has read it, and again when the
/// application changes it.
#[test]
fn values_a_target_assigns_flow_back_to_a_file_for_hr() {
    let e = env();
    let db = rusqlite::Connection::open(e.path("app.db")).expect("app.db");
    db.execute_batch("ALTER TABLE accounts ADD COLUMN extension TEXT")
        .expect("column");
    e.write(
        "rules/targets/extensions.toml",
        r#"
[target]
name = "extensions"
kind = "csv"
object_type = "person"
path = "../../out/extensions.csv"
key = "Worker_ID"

[provision]
scope = 'IsPresent(employeeId) and lifecycle <> "leaver"'
name = "employeeId"

[reconcile]
grants_access = false

[flows.export]
Login = { account = "app", value = "name" }
Extension = { account = "app", value = "extension" }
"#,
    );
    let rows = |e: &Env| -> std::collections::BTreeMap<String, (String, String)> {
        let Ok(mut r) = csv::Reader::from_path(e.path("out/extensions.csv")) else {
            return Default::default();
        };
        let h = r.headers().expect("header").clone();
        let col = |name: &str| h.iter().position(|c| c == name).expect("column");
        let (login, ext) = (col("Login"), col("Extension"));
        r.records()
            .map(|x| {
                let x = x.expect("row");
                (x[0].to_string(), (x[login].to_string(), x[ext].to_string()))
            })
            .collect()
    };
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    ok(e.idsync(&["--as-of", DAY1, "export", "app"]));
    let logins: Vec<String> = app_rows(&e).into_keys().collect();
    assert!(logins.len() > 3, "{logins:?}");
    // The application numbers its accounts.
    for (n, login) in logins.iter().enumerate() {
        db.execute(
            "UPDATE accounts SET extension = ?1 WHERE login = ?2",
            rusqlite::params![format!("{}", 4100 + n), login],
        )
        .expect("extension");
    }
    // Before the application is read back, the rows wait without it.
    ok(e.idsync(&["--as-of", DAY1, "export", "extensions"]));
    let before = rows(&e);
    assert!(!before.is_empty());
    assert!(before.values().all(|(_, ext)| ext.is_empty()), "{before:?}");
    let status = json(e.idsync(&["--as-of", DAY1, "--json", "status"]));
    assert!(status.to_string().contains("extensions"), "{status}");

    let read = json(e.idsync(&["--as-of", DAY1, "--json", "import", "app"]));
    assert!(
        read["read_back_changed"].as_u64().unwrap_or(0) > 3,
        "{read}"
    );
    ok(e.idsync(&["--as-of", DAY1, "export", "extensions"]));
    let after = rows(&e);
    let first = &logins[0];
    let (wid, (_, ext)) = after
        .iter()
        .find(|(_, (login, _))| login == first)
        .expect("the first login's row");
    assert_eq!(ext, "4100", "{after:?}");
    assert!(
        after.values().all(|(l, x)| !l.is_empty() && !x.is_empty()),
        "{after:?}"
    );

    // The application changes one; the next read and export follow.
    db.execute(
        "UPDATE accounts SET extension = '4999' WHERE login = ?1",
        [first],
    )
    .expect("change");
    let read = json(e.idsync(&["--as-of", DAY1, "--json", "import", "app"]));
    assert_eq!(read["read_back_changed"], 1, "{read}");
    let export = json(e.idsync(&["--as-of", DAY1, "--json", "export", "extensions"]));
    assert_eq!(export["updated"], 1, "{export}");
    assert_eq!(rows(&e)[wid].1, "4999");
}

/// The metaverse id of the group named `name`.
fn group_id(e: &Env, name: &str) -> i64 {
    let found = json(e.idsync(&["--json", "search", "--mv", &format!(r#"name = "{name}""#)]));
    found[0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no group {name}: {found}"))
}

/// The members of a group, as `show` lists them.
fn shown_members(e: &Env, group: i64) -> Vec<String> {
    let s = json(e.idsync(&["--json", "show", &group.to_string()]));
    s[0]["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .find(|a| a["attribute"] == "member")
        .map(|a| {
            a["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// An identity's attributes as its row in the store holds them.
fn stored_attrs(db: &rusqlite::Connection, id: i64) -> String {
    db.query_row("SELECT attrs FROM mv_object WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .expect("identity row")
}

#[test]
fn a_groups_row_holds_no_members_and_readers_find_them_in_its_memberships() {
    let e = env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    let finance = group_id(&e, "dept-finance");
    let person = e.identity_of("workday:W100005").expect("W100005");
    let members = shown_members(&e, finance);
    assert!(members.contains(&person.to_string()), "{members:?}");
    // A member joining or leaving writes the group's small row, not a
    // list of every member.
    let db = rusqlite::Connection::open(e.store()).expect("store");
    let row = stored_attrs(&db, finance);
    assert!(!row.contains("member"), "{row}");
    let holding = json(e.idsync(&[
        "--json",
        "search",
        "--mv",
        &format!(r#"member = "{person}""#),
    ]));
    let ids: Vec<i64> = holding
        .as_array()
        .expect("found")
        .iter()
        .filter_map(|g| g["id"].as_i64())
        .collect();
    assert!(ids.contains(&finance), "{holding}");

    // Day 2 moves W100005 to Treasury: the lists follow the memberships.
    day2(&e);
    ok(e.idsync(&["--as-of", DAY2, "run", "nightly"]));
    assert!(!shown_members(&e, finance).contains(&person.to_string()));
    let treasury = group_id(&e, "dept-treasury");
    assert_eq!(shown_members(&e, treasury), vec![person.to_string()]);
}

#[test]
fn a_group_that_kept_its_members_in_its_row_is_read_so_until_it_changes() {
    let e = env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    let finance = group_id(&e, "dept-finance");
    let person = e.identity_of("workday:W100005").expect("W100005");
    // The finance group as a store written before memberships were rows
    // holds it: the list in the group's row, no member attribute recorded.
    let db = rusqlite::Connection::open(e.store()).expect("store");
    let members: Vec<String> = db
        .prepare("SELECT mv_id FROM group_member WHERE rule = 'departments' AND key = 'dept-finance' ORDER BY mv_id")
        .expect("members")
        .query_map([], |r| r.get::<_, i64>(0))
        .expect("members")
        .map(|m| m.expect("member").to_string())
        .collect();
    assert!(members.contains(&person.to_string()), "{members:?}");
    let row = stored_attrs(&db, finance);
    let mut attrs: serde_json::Map<String, Value> = serde_json::from_str(&row).expect("attrs");
    attrs.insert("member".into(), Value::from(members.clone()));
    db.execute(
        "UPDATE mv_object SET attrs = ?1 WHERE id = ?2",
        rusqlite::params![Value::Object(attrs).to_string(), finance],
    )
    .expect("old row");
    db.execute(
        "UPDATE group_object SET member_attr = NULL WHERE mv_id = ?1",
        [finance],
    )
    .expect("old group");
    drop(db);
    assert_eq!(shown_members(&e, finance), members, "read from the row");

    // Day 2 moves W100005 out of Finance: the group is written the new way.
    day2(&e);
    ok(e.idsync(&["--as-of", DAY2, "run", "nightly"]));
    let after = shown_members(&e, finance);
    assert!(!after.contains(&person.to_string()), "{after:?}");
    let db = rusqlite::Connection::open(e.store()).expect("store");
    let (row, listed): (String, Option<String>) = db
        .query_row(
            "SELECT m.attrs, g.member_attr FROM mv_object m JOIN group_object g ON g.mv_id = m.id WHERE m.id = ?1",
            [finance],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("group row");
    assert!(!row.contains("member"), "{row}");
    assert_eq!(listed.as_deref(), Some("member"));
}

#[test]
fn groups_come_from_the_identities_a_sync_wrote_and_from_the_store_for_the_rest() {
    let e = env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    let finance: std::collections::BTreeSet<String> =
        shown_members(&e, group_id(&e, "dept-finance"))
            .into_iter()
            .collect();
    let person = e
        .identity_of("workday:W100005")
        .expect("W100005")
        .to_string();
    assert!(finance.contains(&person), "{finance:?}");

    // A changed rule puts every identity in its group again. This sync
    // writes none of them: each is read from the store.
    let path = e.path("rules/metaverse.toml");
    let text = std::fs::read_to_string(&path).expect("metaverse rules");
    assert!(
        text.contains(r#"key = '"dept-" & "#),
        "the example's rule moved"
    );
    e.write(
        "rules/metaverse.toml",
        &text.replace(r#"key = '"dept-" & "#, r#"key = '"department-" & "#),
    );
    ok(e.idsync(&["--as-of", DAY1, "sync"]));
    let renamed: std::collections::BTreeSet<String> =
        shown_members(&e, group_id(&e, "department-finance"))
            .into_iter()
            .collect();
    assert_eq!(renamed, finance, "the same people, under the new key");
    // The group's own values come from its first member's, read here.
    let group = json(e.idsync(&["--json", "search", "--mv", r#"name = "department-finance""#]));
    assert_eq!(group[0]["label"], "Department Finance", "{group}");
    let old = json(e.idsync(&["--json", "search", "--mv", r#"name = "dept-finance""#]));
    assert_eq!(
        old,
        serde_json::json!([]),
        "the old group went with its members"
    );

    // Day 2's mover is written by the sync, and grouped from those values.
    day2(&e);
    ok(e.idsync(&["--as-of", DAY2, "run", "nightly"]));
    assert_eq!(
        shown_members(&e, group_id(&e, "department-treasury")),
        vec![person.clone()]
    );
    assert!(!shown_members(&e, group_id(&e, "department-finance")).contains(&person));
    // A group made by this pass takes its values from the written mover.
    let group = json(e.idsync(&[
        "--json",
        "search",
        "--mv",
        r#"name = "department-treasury""#,
    ]));
    assert_eq!(group[0]["label"], "Department Treasury", "{group}");
}
