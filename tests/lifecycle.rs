//! The HR lifecycle on the bundled example, day by day: day 1 is
//! `fixtures/hr`, day 2 is `fixtures/hr/day2` (see `fixtures/README.md` for
//! what changed), run with a fixed clock. Joiners, pre-hires, movers, a name
//! change, leavers now and on a future date, rehires under the same and a new
//! worker id, a contractor converted to an employee, a deleted row, a row
//! that leaves scope, an empty source stopped by the deletion guard, and a
//! crash between a delta import and the delta sync.

mod common;
use common::*;
use serde_json::Value;

const DAY1: &str = "2026-11-23T02:00:00Z";
const DAY2: &str = "2026-11-24T02:00:00Z";

fn day2(e: &Env) {
    hr_day(e, "fixtures/hr/day2");
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// The identity `agent:anchor` belongs to, as `show --json` gives it.
fn show(e: &Env, key: &str) -> Option<Value> {
    let out = e.idsync(&["--json", "show", key]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v.get(0).cloned()
}

fn id(e: &Env, key: &str) -> i64 {
    show(e, key)
        .and_then(|v| v["id"].as_i64())
        .unwrap_or_else(|| panic!("{key} has no identity"))
}

fn attr(v: &Value, name: &str) -> Option<String> {
    v["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["attribute"] == name)
        .and_then(|a| a["values"].get(0))
        .and_then(|x| x.as_str())
        .map(str::to_string)
}

fn lifecycle(e: &Env, key: &str) -> Option<String> {
    show(e, key).and_then(|v| attr(&v, "lifecycle"))
}

/// The identity with this id, by id.
fn by_id(e: &Env, id: i64) -> Value {
    show(e, &id.to_string()).unwrap_or_else(|| panic!("no identity {id}"))
}

#[test]
fn joiners_movers_leavers_rehires_and_conversions_day_by_day() {
    let e = example_env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    let before = [
        "workday:W100005",
        "workday:W100006",
        "workday:W100013",
        "workday:W100030",
        "workday:W100024",
        "contractors:C-0004",
        "workday:W100017",
    ]
    .map(|k| (k, id(&e, k)));
    let was = |k: &str| {
        before
            .iter()
            .find(|(x, _)| *x == k)
            .map(|(_, i)| *i)
            .unwrap_or(-1)
    };
    assert_eq!(lifecycle(&e, "workday:W100013").as_deref(), Some("leaver"));
    assert_eq!(lifecycle(&e, "workday:W100030").as_deref(), Some("leaver"));
    assert_eq!(lifecycle(&e, "workday:W100007").as_deref(), Some("active"));
    assert_eq!(
        lifecycle(&e, "contractors:C-0004").as_deref(),
        Some("active")
    );
    let sap_rossi = show(&e, "sap:00012004").expect("Chiara Rossi joined from SAP");
    assert_eq!(sap_rossi["id"].as_i64(), Some(was("workday:W100017")));

    day2(&e);
    let run = ok(e.idsync(&["--as-of", DAY2, "--json", "run", "delta"]));
    let report: Value = serde_json::from_str(&run).expect("json");
    assert_eq!(report["status"], "success", "{report}");

    // Joiners: one starting today, one with a hire date ahead.
    assert_eq!(lifecycle(&e, "workday:W100102").as_deref(), Some("active"));
    assert_eq!(lifecycle(&e, "workday:W100101").as_deref(), Some("prehire"));
    // Mover: department, title and manager flow through; the same identity.
    let mover = show(&e, "workday:W100005").expect("mover");
    assert_eq!(mover["id"].as_i64(), Some(was("workday:W100005")));
    assert_eq!(attr(&mover, "department").as_deref(), Some("Treasury"));
    assert_eq!(attr(&mover, "title").as_deref(), Some("Head of Treasury"));
    assert_eq!(
        attr(&mover, "manager").and_then(|m| m.parse::<i64>().ok()),
        Some(id(&e, "workday:W100001"))
    );
    // A name change keeps the identity.
    let renamed = show(&e, "workday:W100006").expect("renamed");
    assert_eq!(renamed["id"].as_i64(), Some(was("workday:W100006")));
    assert_eq!(attr(&renamed, "sn").as_deref(), Some("Müller-Lüdenscheidt"));
    // Leavers: terminated today; a future end date is still active.
    assert_eq!(lifecycle(&e, "workday:W100007").as_deref(), Some("leaver"));
    assert_eq!(lifecycle(&e, "workday:W100008").as_deref(), Some("active"));
    // Rehire under the same worker id: the old identity, active again.
    assert_eq!(id(&e, "workday:W100013"), was("workday:W100013"));
    assert_eq!(lifecycle(&e, "workday:W100013").as_deref(), Some("active"));
    // Rehire under a new worker id: the identity W100030 had, not a new one.
    assert_eq!(id(&e, "workday:W100130"), was("workday:W100030"));
    assert_eq!(lifecycle(&e, "workday:W100130").as_deref(), Some("active"));
    // Conversion: the contractor hired as an employee keeps one identity,
    // and Workday's values now win.
    let converted = show(&e, "workday:W100104").expect("converted");
    assert_eq!(converted["id"].as_i64(), Some(was("contractors:C-0004")));
    assert_eq!(
        attr(&converted, "employeeType").as_deref(),
        Some("Employee")
    );
    assert_eq!(id(&e, "contractors:C-0004"), was("contractors:C-0004"));
    // A deleted row: the identity is kept, a leaver, with no connector.
    let deleted = by_id(&e, was("workday:W100024"));
    assert_eq!(attr(&deleted, "lifecycle").as_deref(), Some("leaver"));
    assert!(show(&e, "workday:W100024").is_none());
    // A row that leaves scope: SAP withdrew Chiara Rossi; her identity stays
    // with Workday and loses the SAP connector.
    assert!(show(&e, "sap:00012004").is_none());
    assert_eq!(id(&e, "workday:W100017"), was("workday:W100017"));

    // What the delta sync did, object by object.
    let runs: Value = serde_json::from_str(&ok(e.idsync(&["--json", "runs"]))).expect("json");
    let last = runs[0]["run"]["id"].as_i64().expect("run id").to_string();
    let shown = ok(e.idsync(&["runs", "show", &last, "--changes"]));
    assert!(shown.contains("disconnected       sap 00012004"), "{shown}");
    assert!(
        shown.contains("joined             workday W100130"),
        "{shown}"
    );
    assert!(shown.contains("identity-retained"), "{shown}");

    // Day 3, no source changed: the pre-hire starts and the future end date
    // arrives, found by the due dates without reading the metaverse.
    let status: Value = serde_json::from_str(&ok(e.idsync(&[
        "--as-of",
        "2026-12-01T02:00:00Z",
        "--json",
        "status",
    ])))
    .expect("json");
    assert_eq!(status["identities_due"], 2, "{status}");
    let third = ok(e.idsync(&[
        "--as-of",
        "2026-12-01T02:00:00Z",
        "--json",
        "sync",
        "--delta",
    ]));
    let third: Value = serde_json::from_str(&third).expect("json");
    assert_eq!(third["mode"], "delta");
    assert_eq!(third["counters"]["mv_updates"], 2, "{third}");
    assert_eq!(lifecycle(&e, "workday:W100101").as_deref(), Some("active"));
    assert_eq!(lifecycle(&e, "workday:W100008").as_deref(), Some("leaver"));
}

#[test]
fn an_empty_source_file_is_stopped_by_the_deletion_guard() {
    let e = example_env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    let header = std::fs::read_to_string(e.path("fixtures/hr/workday.csv"))
        .expect("read")
        .lines()
        .next()
        .map(str::to_string)
        .expect("header");
    std::fs::write(e.path("fixtures/hr/workday.csv"), format!("{header}\r\n")).expect("write");
    let out = e.idsync(&["--as-of", DAY2, "import", "workday"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("deletion guard"), "{err}");
    assert!(err.contains("--allow-deletes"), "{err}");
    // Nothing was staged: the next sync changes nothing.
    let sync: Value = serde_json::from_str(&ok(
        e.idsync(&["--as-of", DAY2, "--json", "sync", "--delta"])
    ))
    .expect("json");
    assert_eq!(sync["counters"]["mv_deletes"], 0, "{sync}");
    assert_eq!(sync["counters"]["disconnects"], 0, "{sync}");
    assert!(show(&e, "workday:W100001").is_some());
    // The admin who means it says how many.
    let allowed = |step: &[&str]| {
        let args = [&["--as-of", DAY2, "--allow-deletes", "100", "--json"], step].concat();
        serde_json::from_str::<Value>(&ok(e.idsync(&args))).expect("json")
    };
    let import = allowed(&["import", "workday"]);
    let staged = import["counts"]["deletes"].as_u64().unwrap_or(0);
    // The sync that would carry the deletes out is weighed again, and
    // stopped: it keeps nothing of what it wrote.
    let workday_connectors = |e: &Env| {
        show(e, "workday:W100001").map_or(0, |v| {
            v["connectors"]
                .as_array()
                .map_or(0, |c| c.iter().filter(|c| c["agent"] == "workday").count())
        })
    };
    let out = e.idsync(&["--as-of", DAY2, "sync", "--delta"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("deletion guard") && err.contains("workday objects"),
        "{err}"
    );
    assert_eq!(workday_connectors(&e), 1, "the stopped sync kept nothing");
    let runs = ok(e.idsync(&["--json", "runs"]));
    assert!(runs.contains("deletion guard"), "{runs}");
    // Allowed, it disconnects every Workday object, and the audit log says
    // who let it.
    let sync = allowed(&["sync", "--delta"]);
    // Every connector goes (objects out of scope had none), and the guard
    // had weighed exactly those against the whole space.
    let disconnects = sync["counters"]["disconnects"].as_u64().unwrap_or(0);
    assert!(disconnects > 0 && disconnects <= staged, "{sync}");
    assert!(
        err.contains(&format!(
            "disconnect {disconnects} of {staged} workday objects"
        )),
        "{err}"
    );
    assert_eq!(workday_connectors(&e), 0);
    let audit = ok(e.idsync(&["--json", "audit", "list"]));
    assert!(
        audit.contains("deletes-allowed") && audit.contains("workday objects"),
        "{audit}"
    );
}

#[test]
fn a_crash_between_delta_import_and_delta_sync_loses_nothing() {
    let e = example_env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    let noah = id(&e, "workday:W100030");
    day2(&e);
    for agent in ["workday", "sap", "contractors"] {
        ok(e.idsync(&["--as-of", DAY2, "import", "--delta", agent]));
    }
    let crashed = e.idsync_env(
        &["--as-of", DAY2, "sync", "--delta"],
        &[("IDSYNC_FAULT", "sync-before-commit")],
    );
    assert!(!crashed.status.success());
    // The imports are still pending; the next delta sync does the whole day.
    let status = ok(e.idsync(&["--json", "status"]));
    assert!(status.contains("pending"), "{status}");
    ok(e.idsync(&["--as-of", DAY2, "sync", "--delta"]));
    assert_eq!(id(&e, "workday:W100130"), noah);
    assert_eq!(lifecycle(&e, "workday:W100130").as_deref(), Some("active"));
    assert_eq!(lifecycle(&e, "workday:W100101").as_deref(), Some("prehire"));
    let again: Value = serde_json::from_str(&ok(
        e.idsync(&["--as-of", DAY2, "--json", "sync", "--delta"])
    ))
    .expect("json");
    assert_eq!(again["counters"]["processed"], 0, "{again}");
}

#[test]
fn a_delta_sync_after_a_rule_change_runs_as_a_full_sync() {
    let e = example_env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    // When profiles run is not what the metaverse holds: a new schedule
    // leaves delta syncs delta.
    let profiles = e.path("rules/profiles.toml");
    let text = std::fs::read_to_string(&profiles).expect("read");
    let changed = text.replace(r#"every = "15m""#, r#"every = "5m""#);
    assert_ne!(text, changed, "the schedule to change is in the example");
    std::fs::write(&profiles, changed).expect("write");
    let delta: Value = serde_json::from_str(&ok(
        e.idsync(&["--as-of", DAY1, "--json", "sync", "--delta"])
    ))
    .expect("json");
    assert_eq!(delta["mode"], "delta", "{delta}");
    let p = e.path("rules/agents/workday.toml");
    let text = std::fs::read_to_string(&p).expect("read");
    let changed = text.replace(
        r#"displayName = 'Coalesce(Preferred_First_Name, Legal_First_Name) & " " & Legal_Last_Name'"#,
        r#"displayName = 'Legal_Last_Name & ", " & Coalesce(Preferred_First_Name, Legal_First_Name)'"#,
    );
    assert_ne!(text, changed, "the rule to change is in the example");
    std::fs::write(&p, changed).expect("write");
    // `check` says a full sync is due; a delta sync does one, and says so.
    let check = e.idsync(&["check"]);
    assert!(
        format!("{}{}", stdout(&check), stderr(&check)).contains("full sync"),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
    let status: Value = serde_json::from_str(&ok(e.idsync(&["--json", "status"]))).expect("json");
    assert_eq!(status["full_sync_due"], true, "{status}");
    let first: Value = serde_json::from_str(&ok(
        e.idsync(&["--as-of", DAY1, "--json", "sync", "--delta"])
    ))
    .expect("json");
    assert_eq!(first["mode"], "full", "{first}");
    assert!(
        first["counters"]["mv_updates"].as_u64().unwrap_or(0) > 20,
        "{first}"
    );
    assert_eq!(
        show(&e, "workday:W100001")
            .and_then(|v| attr(&v, "displayName"))
            .as_deref(),
        Some("Okafor, Amara")
    );
    let next: Value = serde_json::from_str(&ok(
        e.idsync(&["--as-of", DAY1, "--json", "sync", "--delta"])
    ))
    .expect("json");
    assert_eq!(next["mode"], "delta", "{next}");
    assert_eq!(next["counters"]["processed"], 0, "{next}");
}
