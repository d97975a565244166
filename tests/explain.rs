//! `idsync explain` and `idsync history` on the bundled example, day by
//! day (day 1 is `fixtures/hr`, day 2 `fixtures/hr/day2`), through the
//! binary: a mover's values before and after and as of day 1, joins with
//! their rule and matched values, a value from a lower source because a
//! higher one had none, accounts with their scope and state, a leaver's
//! account removed, and an identity deleted when its retention ended.

mod common;
use common::*;
use serde_json::Value;

const DAY1: &str = "2026-11-23T02:00:00Z";
const DAY2: &str = "2026-11-24T02:00:00Z";

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn json(e: &Env, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(e.idsync(&all))).expect("json")
}

/// Day 1 then day 2 of the example, each a `run nightly` (runs 1 and 2).
fn two_days(e: &Env) {
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    hr_day(e, "fixtures/hr/day2");
    ok(e.idsync(&["--as-of", DAY2, "run", "nightly"]));
}

fn entries<'v>(h: &'v Value, kind: &str) -> Vec<&'v Value> {
    h["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|x| x["kind"] == kind)
        .collect()
}

fn attribute<'v>(e: &'v Value, name: &str) -> &'v Value {
    e["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .find(|a| a["attribute"] == name)
        .unwrap_or_else(|| panic!("no attribute {name} in {e}"))
}

fn account<'v>(e: &'v Value, target: &str) -> &'v Value {
    e["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["target"] == target)
        .unwrap_or_else(|| panic!("no target {target} in {e}"))
}

#[test]
fn a_mover_shows_before_and_after_and_the_values_as_of_day_one() {
    let e = example_env();
    two_days(&e);
    let h = json(&e, &["history", "workday:W100005"]);
    let updates = entries(&h, "identity-updated");
    assert_eq!(updates.len(), 1, "{h}");
    let u = updates[0];
    assert_eq!(u["run"], 2);
    assert_eq!(u["step"], "sync");
    assert_eq!(u["at"], "2026-11-24T02:00:00.000Z");
    assert_eq!(
        u["values"]["department"],
        serde_json::json!([["Finance"], ["Treasury"]])
    );
    assert_eq!(
        u["values"]["title"],
        serde_json::json!([["Director, Finance"], ["Head of Treasury"]])
    );
    // Oldest first: the projection in run 1 opens the list.
    assert_eq!(h["entries"][0]["kind"], "projected");
    assert_eq!(h["entries"][0]["run"], 1);
    // Provisioning and the export that applied the change are listed too.
    let exported: Vec<_> = entries(&h, "exported-update");
    assert!(
        exported.iter().any(|x| x["run"] == 2
            && x["agent"] == "badges"
            && x["detail"]
                .as_str()
                .unwrap_or("")
                .contains("department = Treasury")),
        "{h}"
    );

    let text = ok(e.idsync(&["history", "workday:W100005"]));
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("department"))
        .unwrap_or_else(|| panic!("no department line in\n{text}"));
    assert!(line.contains("Finance -> Treasury"), "{line}");
    assert!(text.contains("manager"), "{text}");

    let day1 = json(&e, &["history", "workday:W100005", "--as-of", "1"]);
    assert_eq!(day1["state"], "existed");
    assert_eq!(day1["values"]["department"], serde_json::json!(["Finance"]));
    assert_eq!(
        day1["values"]["title"],
        serde_json::json!(["Director, Finance"])
    );
    let day2 = json(&e, &["history", "workday:W100005", "--as-of", "2"]);
    assert_eq!(
        day2["values"]["department"],
        serde_json::json!(["Treasury"])
    );
    // An instant between the runs is day 1's values.
    let between = json(
        &e,
        &[
            "history",
            "workday:W100005",
            "--as-of",
            "2026-11-23T12:00:00Z",
        ],
    );
    assert_eq!(
        between["values"]["department"],
        serde_json::json!(["Finance"])
    );
    let text = ok(e.idsync(&["history", "workday:W100005", "--as-of", "1"]));
    assert!(text.contains("as of the end of run 1"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("department") && l.ends_with("Finance")),
        "{text}"
    );

    // A joiner of day 2 did not exist at the end of day 1.
    let joiner = json(&e, &["history", "workday:W100102", "--as-of", "1"]);
    assert_eq!(joiner["state"], "not-yet");
    assert_eq!(joiner["created_run"], 2);
}

#[test]
fn unchanged_identities_add_no_history() {
    let e = example_env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    let run = json(&e, &["runs", "show", "2", "--changes"]);
    let updated = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| s["changes"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["kind"] == "identity-updated")
        .count();
    assert_eq!(updated, 0, "{run}");
    let h = json(&e, &["history", "workday:W100005"]);
    assert!(entries(&h, "identity-updated").is_empty(), "{h}");
}

#[test]
fn joins_name_their_rule_and_values_and_a_lower_source_says_why_it_won() {
    let e = example_env();
    // Lukas Müller's Workday row without a job title: SAP's comes through.
    let path = e.path("fixtures/hr/workday.csv");
    let bytes = std::fs::read(&path).expect("read");
    let from = b",Engineering,Engineering Team Lead,W100004,";
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("W100006's row");
    let mut edited = bytes[..at].to_vec();
    edited.extend_from_slice(b",Engineering,,W100004,");
    edited.extend_from_slice(&bytes[at + from.len()..]);
    std::fs::write(&path, edited).expect("write");
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));

    let x = json(&e, &["explain", "sap:00012006"]);
    assert_eq!(x["created"]["kind"], "projected");
    assert_eq!(x["created"]["agent"], "workday");
    assert_eq!(x["created"]["run"], 1);
    let sap = x["connectors"]
        .as_array()
        .expect("connectors")
        .iter()
        .find(|c| c["agent"] == "sap")
        .expect("sap connector");
    assert_eq!(sap["kind"], "joined");
    assert_eq!(sap["rule"], "by-name-and-birth-date");
    assert_eq!(sap["run"], 1);
    assert_eq!(sap["at"], "2026-11-23T02:00:00.000Z");
    let matched: Vec<(String, String)> = sap["matched"]
        .as_array()
        .expect("matched")
        .iter()
        .map(|m| {
            (
                m["attribute"].as_str().unwrap_or("").to_string(),
                m["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        matched,
        [
            ("sn", "muller"),
            ("givenName", "lukas"),
            ("birthDate", "1990-02-17")
        ]
        .map(|(a, v)| (a.to_string(), v.to_string()))
    );

    let title = attribute(&x, "title");
    assert_eq!(title["values"], serde_json::json!(["Softwareentwickler"]));
    assert_eq!(title["precedence"], "ranked");
    assert_eq!(title["sources"][0]["agent"], "sap");
    assert_eq!(title["sources"][0]["anchor"], "00012006");
    assert_eq!(title["sources"][0]["flow"], "PLSTX");
    assert_eq!(title["ranking"][0]["agent"], "workday");
    assert_eq!(title["ranking"][0]["offer"], "no-value");
    assert_eq!(title["ranking"][1]["supplied"], true);
    assert_eq!(
        title["reason"],
        "workday (rank 1) has no value; sap (rank 2) supplied it"
    );
    // Workday's department wins over SAP's, which is offered too.
    let dept = attribute(&x, "department");
    assert_eq!(dept["sources"][0]["agent"], "workday");
    assert_eq!(dept["ranking"][1]["offer"], "values");
    assert_eq!(
        dept["ranking"][1]["values"],
        serde_json::json!(["Entwicklung"])
    );

    let text = ok(e.idsync(&["explain", "sap:00012006"]));
    assert!(
        text.contains("joined by rule by-name-and-birth-date: NACHN = sn (\"muller\")"),
        "{text}"
    );
    assert!(
        text.contains("workday (rank 1) has no value; sap (rank 2) supplied it"),
        "{text}"
    );

    // A rehire under a new worker id joined the identity they had.
    hr_day(&e, "fixtures/hr/day2");
    ok(e.idsync(&["--as-of", DAY2, "run", "nightly"]));
    let r = json(&e, &["explain", "workday:W100130"]);
    let wd = r["connectors"]
        .as_array()
        .expect("connectors")
        .iter()
        .find(|c| c["anchor"] == "W100130")
        .expect("the rehire's connector");
    assert_eq!(wd["rule"], "rehire-by-name-and-birth-date");
    assert_eq!(wd["run"], 2);
    assert_eq!(r["created"]["run"], 1);
}

#[test]
fn accounts_name_their_scope_and_state_and_a_leaver_loses_them() {
    let e = example_env();
    two_days(&e);
    let x = json(&e, &["explain", "workday:W100005"]);
    let badge = account(&x, "badges");
    assert_eq!(badge["scope"], "lifecycle = \"active\"");
    assert_eq!(badge["in_scope"], true);
    assert_eq!(badge["deprovision"], "delete");
    assert_eq!(badge["account"]["state"], "present");
    assert_eq!(badge["account"]["name"], "W100005");
    assert_eq!(badge["account"]["created_run"], 1);
    assert_eq!(badge["account"]["updated_run"], 2);
    assert_eq!(badge["reason"], "in scope: the account exists");
    // Never exported by this profile: waiting to be created.
    let dir = account(&x, "directory");
    assert_eq!(dir["account"]["state"], "create");
    assert_eq!(dir["account"]["pending_export"], true);
    let text = ok(e.idsync(&["explain", "workday:W100005"]));
    assert!(
        text.contains("scope lifecycle = \"active\": in scope now; leaving scope: delete"),
        "{text}"
    );
    assert!(text.contains("present W100005"), "{text}");

    // Terminated on day 2: the badge is deprovisioned and deleted.
    let h = json(&e, &["history", "workday:W100007"]);
    let depro = entries(&h, "account-deprovisioned");
    assert!(
        depro
            .iter()
            .any(|x| x["run"] == 2 && x["agent"] == "badges"),
        "{h}"
    );
    let deleted = entries(&h, "exported-delete");
    assert!(
        deleted
            .iter()
            .any(|x| x["run"] == 2 && x["step"] == "export badges" && x["anchor"] == "W100007"),
        "{h}"
    );
    let u = entries(&h, "identity-updated");
    assert_eq!(
        u[0]["values"]["lifecycle"],
        serde_json::json!([["active"], ["leaver"]])
    );
    let x = json(&e, &["explain", "workday:W100007"]);
    let badge = account(&x, "badges");
    assert_eq!(badge["in_scope"], false);
    assert!(badge["account"].is_null(), "{badge}");
    let removed = x["accounts_removed"].as_array().expect("removed");
    assert!(
        removed
            .iter()
            .any(|r| r["kind"] == "exported-delete" && r["run"] == 2),
        "{x}"
    );
    let text = ok(e.idsync(&["history", "workday:W100007"]));
    assert!(text.contains("deleted W100007 from badges"), "{text}");
}

#[test]
fn a_deleted_identity_keeps_its_history_and_last_values() {
    let e = example_env();
    two_days(&e);
    // W100024's row went on day 2: a leaver kept 400 days, then deleted.
    let out = e.idsync(&["show", "workday:W100024"]);
    assert_eq!(out.status.code(), Some(1), "the connector is gone on day 2");
    let h = json(&e, &["history", "workday:W100024"]);
    let id = h["id"].as_i64().expect("found by its former connector");
    assert_eq!(entries(&h, "identity-retained").len(), 1, "{h}");
    ok(e.idsync(&["--as-of", "2028-01-10", "--allow-deletes", "100", "sync"]));
    let id = id.to_string();
    let h = json(&e, &["history", &id]);
    assert!(h["object_type"].is_null());
    let gone = entries(&h, "identity-deleted");
    assert_eq!(gone.len(), 1, "{h}");
    assert_eq!(
        gone[0]["values"]["department"][0],
        serde_json::json!(["Product Management"])
    );
    assert_eq!(
        gone[0]["values"]["lifecycle"][0],
        serde_json::json!(["leaver"])
    );
    let run = gone[0]["run"].as_i64().expect("run");
    let before = json(&e, &["history", &id, "--as-of", "2"]);
    assert_eq!(before["state"], "existed");
    assert_eq!(before["values"]["lifecycle"], serde_json::json!(["leaver"]));
    assert_eq!(before["values"]["sn"], serde_json::json!(["Demir"]));
    let day1 = json(&e, &["history", &id, "--as-of", "1"]);
    assert_eq!(day1["values"]["lifecycle"], serde_json::json!(["active"]));
    let after = json(&e, &["history", &id, "--as-of", &run.to_string()]);
    assert_eq!(after["state"], "deleted");
    let x = json(&e, &["explain", &id]);
    assert_eq!(x["deleted"]["run"], run);
    let text = ok(e.idsync(&["explain", &id]));
    assert!(text.contains("no longer in the metaverse"), "{text}");
}

#[test]
fn unknown_identities_and_runs_are_clear_errors() {
    let e = example_env();
    ok(e.idsync(&["--as-of", DAY1, "run", "nightly"]));
    for cmd in ["explain", "history"] {
        let out = e.idsync(&[cmd, "no-such-person"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("no identity found for \"no-such-person\""),
            "{}",
            stderr(&out)
        );
    }
    // An attribute value several identities hold names them all.
    let out = e.idsync(&["explain", "Engineering"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("name one by its id"),
        "{}",
        stderr(&out)
    );
    let out = e.idsync(&["history", "workday:W100005", "--as-of", "9"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no run 9"), "{}", stderr(&out));
    let out = e.idsync(&["--as-of", "1", "status"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a run number is for `history`"),
        "{}",
        stderr(&out)
    );
}
