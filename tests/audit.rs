//! The audit log through the binary, on the bundled example and a real
//! store: `audit verify` passes after runs and names the record an edit of
//! the database file altered, removed or rewrote; `audit export` writes JSON
//! lines a SIEM can check; `audit prune` keeps the rest verifiable.

mod common;
use common::*;
use idsync::audit::chain::{AuditRecord, canonical_json};
use rusqlite::{Connection, params};
use serde_json::Value;

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\n{}{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn db(e: &Env) -> Connection {
    Connection::open(e.store()).expect("open the store file")
}

/// `audit verify --json`: its exit code and report.
fn verify(e: &Env) -> (Option<i32>, Value) {
    let out = e.idsync(&["--json", "audit", "verify"]);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}{}", stdout(&out), stderr(&out)));
    (out.status.code(), v)
}

fn assert_broken_at(e: &Env, seq: i64, kind: &str) {
    let (code, v) = verify(e);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(v["problem"]["seq"], seq, "{v}");
    assert_eq!(v["problem"]["kind"], kind, "{v}");
    // People read the same verdict.
    let out = e.idsync(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("BROKEN at record {seq} ({kind})")),
        "{}",
        stdout(&out)
    );
}

/// (seq, at, kind) of every record, in order.
fn records(e: &Env) -> Vec<(i64, String, String)> {
    let conn = db(e);
    let mut stmt = conn
        .prepare("SELECT seq, at, kind FROM audit ORDER BY seq")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The seq of the first record of `kind`.
fn first_of(e: &Env, kind: &str) -> i64 {
    records(e)
        .into_iter()
        .find(|r| r.2 == kind)
        .unwrap_or_else(|| panic!("no {kind} record"))
        .0
}

fn ran_example() -> Env {
    let e = example_env();
    ok(e.idsync(&["run", "nightly"]));
    e
}

#[test]
fn the_example_run_leaves_an_intact_log_of_what_it_did() {
    let e = ran_example();
    let (code, v) = verify(&e);
    assert_eq!(code, Some(0), "{v}");
    let all = records(&e);
    assert_eq!(v["checked"], all.len() as u64, "{v}");
    assert_eq!(v["first_seq"], 1);
    assert_eq!(v["last_seq"], all.len() as u64);
    let kinds: Vec<&str> = all.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"run-started"));
    assert_eq!(
        kinds.get(1),
        Some(&"rules-changed"),
        "the first run's rules"
    );
    assert_eq!(kinds.last(), Some(&"run-finished"));
    // One record per step of the profile, each with its agent.
    assert_eq!(kinds.iter().filter(|k| **k == "step-finished").count(), 6);
    let head: String = db(&e)
        .query_row(
            "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("head");
    assert_eq!(v["head"], head.as_str());
    let text = ok(e.idsync(&["audit", "verify"]));
    assert!(text.contains("intact"), "{text}");
    assert!(text.contains(&head), "{text}");

    // Same rules next time: no rules-changed record; an edited rule file: one,
    // naming it.
    ok(e.idsync(&["run", "hr-only"]));
    let changed = |e: &Env| records(e).iter().filter(|r| r.2 == "rules-changed").count();
    assert_eq!(changed(&e), 1);
    let profiles = e.path("rules/profiles.toml");
    let text = std::fs::read_to_string(&profiles).expect("read") + "\n# reviewed\n";
    std::fs::write(&profiles, text).expect("write");
    ok(e.idsync(&["run", "hr-only"]));
    assert_eq!(changed(&e), 2);
    let detail: String = db(&e)
        .query_row(
            "SELECT detail FROM audit WHERE kind = 'rules-changed' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("detail");
    let detail: Value = serde_json::from_str(&detail).expect("json");
    assert_eq!(detail["changed"], serde_json::json!(["profiles.toml"]));
    assert_eq!(verify(&e).0, Some(0));
}

#[test]
fn an_altered_record_in_the_database_file_is_named() {
    let e = ran_example();
    let seq = first_of(&e, "step-finished") + 1;
    let n = db(&e)
        .execute(
            "UPDATE audit SET detail = replace(detail, '\"status\":\"success\"', '\"status\":\"failed\"') WHERE seq = ?1",
            params![seq],
        )
        .expect("tamper");
    assert_eq!(n, 1);
    assert_broken_at(&e, seq, "altered");
}

#[test]
fn a_record_deleted_from_the_middle_is_named() {
    let e = ran_example();
    let seq = first_of(&e, "step-finished") + 2;
    db(&e)
        .execute("DELETE FROM audit WHERE seq = ?1", params![seq])
        .expect("delete");
    assert_broken_at(&e, seq, "removed");
}

/// Reads a record from the file as the chain sees it.
fn record(conn: &Connection, seq: i64) -> AuditRecord {
    conn.query_row(
        "SELECT seq, at, run, actor, kind, target, subject, detail, prev, hash FROM audit WHERE seq = ?1",
        params![seq],
        |r| {
            Ok(AuditRecord {
                seq: r.get(0)?,
                at: r.get(1)?,
                run: r.get(2)?,
                actor: r.get(3)?,
                kind: r.get(4)?,
                target: r.get(5)?,
                subject: r.get(6)?,
                detail: r.get(7)?,
                prev: r.get(8)?,
                hash: r.get(9)?,
            })
        },
    )
    .expect("record")
}

#[test]
fn a_record_rewritten_with_its_own_hash_recomputed_is_named() {
    let e = ran_example();
    let seq = first_of(&e, "step-finished");
    let conn = db(&e);
    let mut r = record(&conn, seq);
    r.detail = r.detail.replace("\"errors\":3", "\"errors\":0");
    r.hash = r.computed_hash();
    conn.execute(
        "UPDATE audit SET detail = ?2, hash = ?3 WHERE seq = ?1",
        params![seq, r.detail, r.hash],
    )
    .expect("rewrite");
    // The record itself is consistent; the next one's link gives it away.
    assert_eq!(record(&conn, seq).computed_hash(), record(&conn, seq).hash);
    assert_broken_at(&e, seq, "relinked");
}

#[test]
fn export_writes_json_lines_a_siem_can_check() {
    let e = ran_example();
    ok(e.idsync(&["run", "hr-only"]));
    let all = records(&e);
    let second_run = all
        .iter()
        .filter(|r| r.2 == "run-started")
        .nth(1)
        .expect("second run")
        .clone();
    let expected = all.iter().filter(|r| r.1 >= second_run.1).count();
    assert!(expected > 0 && expected < all.len());

    let text = ok(e.idsync(&["audit", "export", "--since", &second_run.1]));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("{err}: {l}")))
        .collect();
    assert_eq!(lines.len(), expected);
    assert_eq!(lines[0]["seq"], second_run.0);
    assert_eq!(lines[0]["kind"], "run-started");
    let mut prev = record(&db(&e), second_run.0).prev;
    for l in &lines {
        for field in [
            "seq", "at", "run", "actor", "kind", "target", "subject", "detail", "prev", "hash",
        ] {
            assert!(l.get(field).is_some(), "{field} missing in {l}");
        }
        // Each line's prev is the hash of the line before, and the line
        // alone gives its hash back.
        assert_eq!(l["prev"], prev.as_str());
        prev = l["hash"].as_str().expect("hash").to_string();
        let text = |f: &str| l[f].as_str().map(str::to_string);
        let again = AuditRecord {
            seq: l["seq"].as_i64().expect("seq"),
            at: text("at").expect("at"),
            run: l["run"].as_i64(),
            actor: text("actor").expect("actor"),
            kind: text("kind").expect("kind"),
            target: text("target"),
            subject: text("subject"),
            detail: canonical_json(&l["detail"]),
            prev: text("prev").expect("prev"),
            hash: String::new(),
        };
        assert_eq!(again.computed_hash(), prev);
    }

    // A date alone is midnight UTC; a file instead of stdout.
    let out = e.path("audit.jsonl");
    let text = ok(e.idsync(&[
        "audit",
        "export",
        "--since",
        "2000-01-01",
        "--out",
        out.to_str().expect("path"),
    ]));
    assert!(
        text.contains(&format!("{} audit records", all.len())),
        "{text}"
    );
    let written = std::fs::read_to_string(&out).expect("read export");
    assert_eq!(written.lines().count(), all.len());
    let none = ok(e.idsync(&["audit", "export", "--since", "2999-01-01"]));
    assert_eq!(none, "");
    let bad = e.idsync(&["audit", "export", "--since", "last tuesday"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn list_shows_the_latest_records_for_people() {
    let e = ran_example();
    let all = records(&e);
    let text = ok(e.idsync(&["audit", "list", "--limit", "3"]));
    let shown: Vec<&str> = text.lines().filter(|l| l.contains("run 1")).collect();
    assert_eq!(shown.len(), 3, "{text}");
    assert!(shown[2].contains("run-finished"), "{text}");
    assert!(text.contains("older records"), "{text}");
    let json: Value = serde_json::from_str(&ok(e.idsync(&[
        "--json", "audit", "list", "--since", &all[0].1, "--limit", "2",
    ])))
    .expect("json");
    assert_eq!(json[0]["seq"], 1);
    assert_eq!(json[1]["seq"], 2);
}

fn with_retention(e: &Env, days: i64) {
    let mv = e.path("rules/metaverse.toml");
    let text = std::fs::read_to_string(&mv).expect("read")
        + &format!("\n[audit]\nretention_days = {days}\n");
    std::fs::write(&mv, text).expect("write");
}

/// `--as-of` for a prune whose cutoff is `at`: retention days after it.
fn days_after(at: &str, days: i64) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(at).expect("time");
    (t + chrono::TimeDelta::days(days)).to_rfc3339()
}

#[test]
fn prune_removes_old_records_and_the_rest_still_verifies() {
    let e = example_env();
    with_retention(&e, 400);
    ok(e.idsync(&["run", "nightly"]));
    ok(e.idsync(&["run", "hr-only"]));
    let before = records(&e);
    let second_run = before
        .iter()
        .filter(|r| r.2 == "run-started")
        .nth(1)
        .expect("second run")
        .clone();
    let old = before.iter().filter(|r| r.1 < second_run.1).count() as i64;
    assert_eq!(old, second_run.0 - 1);

    // Nothing is old enough yet.
    let out: Value =
        serde_json::from_str(&ok(e.idsync(&["--json", "audit", "prune"]))).expect("json");
    assert_eq!(out["removed"], 0, "{out}");
    assert_eq!(records(&e).len(), before.len());

    let as_of = days_after(&second_run.1, 400);
    let out: Value = serde_json::from_str(&ok(
        e.idsync(&["--json", "--as-of", &as_of, "audit", "prune"])
    ))
    .expect("json");
    assert_eq!(out["removed"], old, "{out}");
    assert_eq!(out["pruned"]["anchor"]["seq"], old, "{out}");
    let after = records(&e);
    assert_eq!(after.first().map(|r| r.0), Some(second_run.0));
    let last = after.last().expect("records");
    assert_eq!(last.2, "audit-pruned");
    assert_eq!(last.0, before.len() as i64 + 1);
    let detail: String = db(&e)
        .query_row(
            "SELECT detail FROM audit WHERE seq = ?1",
            params![last.0],
            |r| r.get(0),
        )
        .expect("detail");
    let detail: Value = serde_json::from_str(&detail).expect("json");
    assert_eq!(detail["removed"], old);
    assert_eq!(detail["through_seq"], old);

    let (code, v) = verify(&e);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["first_seq"], second_run.0);
    assert_eq!(v["anchor"]["seq"], old);

    // New records chain on after the prune.
    ok(e.idsync(&["run", "hr-only"]));
    assert_eq!(verify(&e).0, Some(0));

    // Removing a record after the anchor is still found...
    let victim = second_run.0 + 1;
    db(&e)
        .execute("DELETE FROM audit WHERE seq = ?1", params![victim])
        .expect("delete");
    assert_broken_at(&e, victim, "removed");
    // ...and a broken log is not pruned, which would hide the damage.
    let later = days_after(&last.1, 400);
    let out = e.idsync(&["--as-of", &later, "audit", "prune"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("nothing was pruned"),
        "{}",
        stderr(&out)
    );
    assert_eq!(records(&e).first().map(|r| r.0), Some(second_run.0));
}

#[test]
fn removing_the_oldest_records_without_prune_is_found() {
    let e = ran_example();
    db(&e)
        .execute("DELETE FROM audit WHERE seq <= 2", [])
        .expect("delete");
    assert_broken_at(&e, 1, "removed");
    // Covering it with an anchor that no prune recorded is found too.
    let (hash, at): (String, String) = db(&e)
        .query_row("SELECT prev, at FROM audit WHERE seq = 3", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("record 3");
    db(&e)
        .execute(
            "INSERT INTO audit_anchor(id, seq, hash, at) VALUES (1, 2, ?1, ?2)",
            params![hash, at],
        )
        .expect("forge an anchor");
    assert_broken_at(&e, 2, "removed");
}

#[test]
fn prune_without_a_retention_keeps_everything() {
    let e = ran_example();
    let before = records(&e).len();
    let text = ok(e.idsync(&["--as-of", "2999-01-01", "audit", "prune"]));
    assert!(text.contains("kept forever"), "{text}");
    assert_eq!(records(&e).len(), before);
}

#[test]
fn a_bad_retention_is_a_rule_error_with_its_place() {
    let e = example_env();
    with_retention(&e, 0);
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let mv = e.path("rules/metaverse.toml").display().to_string();
    let lines = std::fs::read_to_string(e.path("rules/metaverse.toml"))
        .expect("read")
        .lines()
        .count();
    assert!(
        stderr(&out).contains(&format!(
            "{mv}:{lines}:18: retention_days must be between 1 and 36500"
        )),
        "{}",
        stderr(&out)
    );

    let e = example_env();
    let p = e.path("rules/profiles.toml");
    let text = std::fs::read_to_string(&p).expect("read") + "\n[audit]\nretension_days = 30\n";
    std::fs::write(&p, text).expect("write");
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown field `retension_days`"),
        "{}",
        stderr(&out)
    );

    let e = example_env();
    with_retention(&e, 30);
    let p = e.path("rules/profiles.toml");
    let text = std::fs::read_to_string(&p).expect("read") + "\n[audit]\nretention_days = 60\n";
    std::fs::write(&p, text).expect("write");
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("a second [audit] table"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn clearing_a_quarantine_is_recorded() {
    let e = ran_example();
    db(&e)
        .execute(
            "INSERT INTO target_state(agent, quarantined, quarantined_run) VALUES ('badges', 'too many errors', 1)
             ON CONFLICT(agent) DO UPDATE SET quarantined = excluded.quarantined",
            [],
        )
        .expect("quarantine");
    ok(e.idsync(&["quarantine", "clear", "badges"]));
    let (target, detail): (Option<String>, String) = db(&e)
        .query_row(
            "SELECT target, detail FROM audit WHERE kind = 'quarantine-cleared'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("a quarantine-cleared record");
    assert_eq!(target.as_deref(), Some("badges"));
    assert!(detail.contains("too many errors"), "{detail}");
    // Clearing what is not quarantined changes nothing and records nothing.
    let n = records(&e).len();
    ok(e.idsync(&["quarantine", "clear", "badges"]));
    assert_eq!(records(&e).len(), n);
    assert_eq!(verify(&e).0, Some(0));
}

#[test]
fn an_import_past_the_deletion_guard_is_recorded_with_its_allowance() {
    let e = ran_example();
    let header = std::fs::read_to_string(e.path("fixtures/hr/workday.csv"))
        .expect("read")
        .lines()
        .next()
        .map(str::to_string)
        .expect("header");
    std::fs::write(e.path("fixtures/hr/workday.csv"), format!("{header}\r\n")).expect("write");
    let refused = e.idsync(&["import", "workday"]);
    assert!(!refused.status.success());
    let allowed = |e: &Env| {
        records(e)
            .iter()
            .filter(|r| r.2 == "deletes-allowed")
            .count()
    };
    assert_eq!(allowed(&e), 0);
    ok(e.idsync(&["--allow-deletes", "100", "import", "workday"]));
    assert_eq!(allowed(&e), 1);
    let (target, detail): (Option<String>, String) = db(&e)
        .query_row(
            "SELECT target, detail FROM audit WHERE kind = 'deletes-allowed'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("record");
    assert_eq!(target.as_deref(), Some("workday"));
    let detail: Value = serde_json::from_str(&detail).expect("json");
    assert_eq!(detail["allowed"], 100);
    assert_eq!(detail["step"], "import");
    assert_eq!(verify(&e).0, Some(0));
}

#[test]
fn verify_does_not_create_a_store() {
    let e = Env::new();
    let out = e.idsync(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no store"), "{}", stderr(&out));
    assert!(!e.store().exists());
}
