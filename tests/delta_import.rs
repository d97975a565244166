//! Delta imports through the binary: a file unchanged since the last import
//! is not read, a changed file stages only its changed rows (and a row it
//! lost as a delete), a rule change converts every row again; a SQL source
//! reads from its watermark, deletes through its tombstone, and loses no row
//! that shares the watermark of one already read.

mod common;
use common::*;
use idsync::connector::sqlite_file::TableWriter;
use idsync::store::Store;
use serde_json::Value;

const MV: &str = r#"
[metaverse]
sync_order = ["hr", "con"]
[metaverse.types.person]
precedence = ["hr", "con"]
[metaverse.types.person.attributes]
employeeId = "string"
sn = "string"
birthDate = "date"
contractorId = "string"
"#;

const HR: &str = r#"
[agent]
name = "hr"
kind = "csv"
object_type = "person"
anchor = "id"
path = "../hr.csv"

[columns.born]
date = "%d.%m.%Y"

[projection]
enabled = true

[flows.import]
employeeId = "id"
sn = "last"
birthDate = "born"
"#;

const CON: &str = r#"
[agent]
name = "con"
kind = "sql"
object_type = "person"
anchor = "cid"
path = "../con.db"
table = "contractor"

[agent.delta]
watermark = "updated_at"
tombstone = "deleted"

[columns.updated_at]
ignore = true
[columns.deleted]
ignore = true

[projection]
enabled = true

[flows.import]
contractorId = "cid"
sn = "last"
"#;

const CON_DDL: &str =
    "CREATE TABLE contractor (cid TEXT PRIMARY KEY, last TEXT, updated_at TEXT, deleted INTEGER)";

fn hr_rows(n: usize, edit: impl Fn(usize, &mut Vec<String>)) -> String {
    let mut csv = String::from("id,last,born\n");
    for i in 0..n {
        let mut row = vec![
            format!("E{i:04}"),
            format!("Name{i}"),
            format!("{:02}.0{}.1980", i % 28 + 1, i % 9 + 1),
        ];
        edit(i, &mut row);
        if !row.is_empty() {
            csv.push_str(&row.join(","));
            csv.push('\n');
        }
    }
    csv
}

fn env() -> Env {
    let e = Env::new();
    e.write("rules/mv.toml", MV);
    e.write("rules/hr.toml", HR);
    e.write("hr.csv", &hr_rows(50, |_, _| {}));
    write_con(&e, &[("C1", "Ann", "2024-01-01T10:00:00", 0)]);
    e.write("rules/con.toml", CON);
    e
}

fn write_con(e: &Env, rows: &[(&str, &str, &str, i64)]) {
    let mut w = TableWriter::create(&e.path("con.db"), CON_DDL, "contractor", 4).expect("db");
    for (cid, last, at, deleted) in rows {
        w.insert(&[
            Some(cid.to_string()),
            Some(last.to_string()),
            Some(at.to_string()),
            Some(deleted.to_string()),
        ])
        .expect("row");
    }
    w.finish().expect("db");
}

/// Runs an import and returns its JSON report.
fn import(e: &Env, agent: &str, delta: bool) -> Value {
    let mut args = vec!["--json", "import", agent];
    if delta {
        args.push("--delta");
    }
    let out = e.idsync(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// (how, read, adds, updates, deletes, unchanged)
fn summary(r: &Value) -> (String, u64, u64, u64, u64, u64) {
    let c = &r["counts"];
    let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
    (
        r["how"].as_str().unwrap_or("?").to_string(),
        n("read"),
        n("adds"),
        n("updates"),
        n("deletes"),
        n("unchanged"),
    )
}

fn pending(e: &Env, agent: &str) -> i64 {
    let out = e.idsync(&["--json", "status"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["connector_spaces"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["agent"] == agent))
        .map_or(-1, |c| c["pending_imports"].as_i64().unwrap_or(-1))
}

fn sync(e: &Env) {
    let out = e.idsync(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn s(how: &str, counts: [u64; 5]) -> (String, u64, u64, u64, u64, u64) {
    let [read, adds, updates, deletes, unchanged] = counts;
    (how.to_string(), read, adds, updates, deletes, unchanged)
}

#[test]
fn an_unchanged_file_is_not_read_and_stages_nothing() {
    let e = env();
    assert_eq!(
        summary(&import(&e, "hr", false)),
        s("full", [50, 50, 0, 0, 0])
    );
    sync(&e);
    // Delta or full, the same file is known by its digest.
    for delta in [true, false] {
        assert_eq!(
            summary(&import(&e, "hr", delta)),
            s("unchanged", [0, 0, 0, 0, 50])
        );
    }
    assert_eq!(pending(&e, "hr"), 0);
}

#[test]
fn one_changed_row_is_one_pending_update_and_a_missing_row_a_delete() {
    let e = env();
    import(&e, "hr", false);
    sync(&e);
    e.write(
        "hr.csv",
        &hr_rows(50, |i, r| {
            if i == 7 {
                r[1] = "Renamed".into();
            }
        }),
    );
    assert_eq!(
        summary(&import(&e, "hr", true)),
        s("row-compare", [50, 0, 1, 0, 49])
    );
    assert_eq!(pending(&e, "hr"), 1);
    sync(&e);
    let show = stdout(&e.idsync(&["show", "E0007"]));
    assert!(show.contains("Renamed"), "{show}");

    // A row gone from the file is a delete; a new one an add.
    e.write(
        "hr.csv",
        &hr_rows(51, |i, r| {
            if i == 7 {
                r[1] = "Renamed".into();
            }
            if i == 3 {
                r.clear();
            }
        }),
    );
    assert_eq!(
        summary(&import(&e, "hr", true)),
        s("row-compare", [50, 1, 0, 1, 49])
    );
    assert_eq!(pending(&e, "hr"), 2);
}

#[test]
fn the_same_values_in_other_bytes_stage_nothing() {
    let e = env();
    import(&e, "hr", false);
    sync(&e);
    // Quotes and spaces that trimming removes change the bytes, not the values.
    e.write(
        "hr.csv",
        &hr_rows(50, |i, r| {
            if i == 9 {
                r[1] = format!("\" {} \"", r[1]);
            }
        }),
    );
    assert_eq!(
        summary(&import(&e, "hr", true)),
        s("row-compare", [50, 0, 0, 0, 50])
    );
    assert_eq!(pending(&e, "hr"), 0);
    // The new bytes are remembered: the next compare skips the row unread.
    e.write(
        "hr.csv",
        &hr_rows(50, |i, r| {
            if i == 9 {
                r[1] = format!("\" {} \"", r[1]);
            }
            if i == 10 {
                r[1] = "Other".into();
            }
        }),
    );
    assert_eq!(
        summary(&import(&e, "hr", true)),
        s("row-compare", [50, 0, 1, 0, 49])
    );
}

#[test]
fn a_rule_change_converts_every_row_again() {
    let e = env();
    import(&e, "hr", false);
    sync(&e);
    // Same file, dates now read month first: rows whose date reads
    // differently are updates, and a row whose date no longer parses is
    // rejected (and so missing).
    e.write("rules/hr.toml", &HR.replace("%d.%m.%Y", "%m.%d.%Y"));
    // Half the rows rejected means half the space deleted: the deletion
    // guard stops that until the admin says how many may go.
    let stopped = e.idsync(&["--json", "import", "hr", "--delta"]);
    assert!(!stopped.status.success());
    assert!(
        stderr(&stopped).contains("deletion guard"),
        "{}",
        stderr(&stopped)
    );
    let out = e.idsync(&["--json", "--allow-deletes", "30", "import", "hr", "--delta"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    let (how, read, adds, updates, deletes, unchanged) = summary(&r);
    assert_eq!(how, "full");
    assert!(r["note"].as_str().unwrap_or("").contains("rules"), "{r}");
    // Day 1-28 in the month position: days above 12 no longer parse.
    let rejected = (0..50).filter(|i| i % 28 + 1 > 12).count() as u64;
    let same = (0..50).filter(|i| i % 28 + 1 == i % 9 + 1).count() as u64;
    assert_eq!(read, 50);
    assert_eq!(r["counts"]["rejected"].as_u64(), Some(rejected));
    assert_eq!(
        (adds, updates, deletes, unchanged),
        (0, 50 - rejected - same, rejected, same)
    );
    // Under the new rules the file is known again.
    assert_eq!(summary(&import(&e, "hr", true)).0, "unchanged");
}

#[test]
fn sql_delta_reads_from_the_watermark_and_keeps_ties() {
    let e = env();
    write_con(
        &e,
        &[
            ("C1", "Ann", "2024-01-01T10:00:00", 0),
            ("C2", "Bo", "2024-01-02T10:00:00", 0),
            ("C3", "Cy", "2024-01-03T10:00:00", 0),
        ],
    );
    // The first import reads everything and records the watermark.
    let r = import(&e, "con", true);
    assert_eq!(summary(&r), s("full", [3, 3, 0, 0, 0]));
    assert!(r["note"].as_str().unwrap_or("").contains("No watermark"));
    let marks = || {
        Store::open(&e.store())
            .and_then(|s| s.source_marks("con"))
            .expect("marks")
            .watermark
            .unwrap_or_default()
    };
    assert!(marks().contains("2024-01-03T10:00:00"), "{}", marks());
    sync(&e);

    // Nothing new: only the row at the watermark itself is read again.
    assert_eq!(
        summary(&import(&e, "con", true)),
        s("watermark", [1, 0, 0, 0, 1])
    );

    // C2 changed, C4 is new; C1's change without a newer watermark is not
    // seen by a delta import (only a full one would).
    write_con(
        &e,
        &[
            ("C1", "Changed", "2024-01-01T10:00:00", 0),
            ("C2", "Bob", "2024-01-04T09:00:00", 0),
            ("C3", "Cy", "2024-01-03T10:00:00", 0),
            ("C4", "Di", "2024-01-04T09:00:00", 0),
        ],
    );
    assert_eq!(
        summary(&import(&e, "con", true)),
        s("watermark", [3, 1, 1, 0, 1])
    );
    assert!(marks().contains("2024-01-04T09:00:00"), "{}", marks());
    assert_eq!(pending(&e, "con"), 2);

    // A row committed later with the watermark already read is not lost;
    // C3's tombstone deletes it.
    write_con(
        &e,
        &[
            ("C1", "Changed", "2024-01-01T10:00:00", 0),
            ("C2", "Bob", "2024-01-04T09:00:00", 0),
            ("C3", "Cy", "2024-01-05T08:00:00", 1),
            ("C4", "Di", "2024-01-04T09:00:00", 0),
            ("C5", "Ed", "2024-01-04T09:00:00", 0),
        ],
    );
    assert_eq!(
        summary(&import(&e, "con", true)),
        s("watermark", [4, 1, 0, 1, 2])
    );

    // A full import compares every row: C1's silent change is found, and
    // the tombstoned C3 stays deleted.
    assert_eq!(
        summary(&import(&e, "con", false)),
        s("full", [5, 0, 1, 0, 3])
    );
}

#[test]
fn rows_without_a_watermark_are_read_every_time() {
    let e = env();
    write_con(
        &e,
        &[("C1", "Ann", "2024-01-01T10:00:00", 0), ("C2", "Bo", "", 0)],
    );
    import(&e, "con", false);
    // C2 loses its watermark (NULL) and changes.
    let mut w = TableWriter::create(&e.path("con.db"), CON_DDL, "contractor", 4).expect("db");
    w.insert(&[
        Some("C1".into()),
        Some("Ann".into()),
        Some("2024-01-01T10:00:00".into()),
        None,
    ])
    .expect("row");
    w.insert(&[Some("C2".into()), Some("Bob".into()), None, None])
        .expect("row");
    w.finish().expect("db");
    assert_eq!(
        summary(&import(&e, "con", true)),
        s("watermark", [2, 0, 1, 0, 1])
    );
}

#[test]
fn a_sql_agent_without_delta_rules_compares_in_full() {
    let e = env();
    let plain = CON
        .replace("[agent.delta]\n", "")
        .replace("watermark = \"updated_at\"\n", "")
        .replace("tombstone = \"deleted\"\n", "");
    e.write("rules/con.toml", &plain);
    import(&e, "con", false);
    let r = import(&e, "con", true);
    assert_eq!(summary(&r), s("full", [1, 0, 0, 0, 1]));
    assert!(
        r["note"]
            .as_str()
            .unwrap_or("")
            .contains("No [agent.delta]"),
        "{r}"
    );
}

#[test]
fn delta_rules_are_checked_with_places() {
    let e = env();
    e.write(
        "rules/con.toml",
        &CON.replace("watermark = \"updated_at\"", "watermark = \"updated\"")
            .replace(
                "tombstone = \"deleted\"",
                "tombstone = \"deleted\"\nlag = 5",
            ),
    );
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("unknown field `lag`"), "{err}");
    e.write(
        "rules/con.toml",
        &CON.replace("watermark = \"updated_at\"", "watermark = \"updated\""),
    );
    let err = stderr(&e.idsync(&["check"]));
    let con = e.rules().join("con.toml").display().to_string();
    assert!(
        err.contains(&format!(
            "{con}:11:13: watermark: the source has no column \"updated\""
        )),
        "{err}"
    );
    assert!(err.contains("did you mean \"updated_at\"?"), "{err}");

    e.write("rules/con.toml", CON);
    e.write(
        "rules/hr.toml",
        &HR.replace(
            "[columns.born]",
            "[agent.delta]\nwatermark = \"born\"\n\n[columns.born]",
        ),
    );
    let err = stderr(&e.idsync(&["check"]));
    assert!(err.contains("[agent.delta] is for kind = \"sql\""), "{err}");
    assert!(err.contains("a file is a full snapshot"), "{err}");
}

#[test]
fn a_watermark_taken_under_other_rules_is_not_continued_from() {
    let e = env();
    write_con(
        &e,
        &[
            ("C1", "Ann", "2024-01-01T10:00:00", 0),
            ("C2", "Bo", "2024-01-02T10:00:00", 0),
        ],
    );
    import(&e, "con", false);
    assert_eq!(summary(&import(&e, "con", true)).0, "watermark");
    // A new column rule may change any row, old or new: read them all.
    e.write(
        "rules/con.toml",
        &CON.replace(
            "[columns.deleted]",
            "[columns.last]\nmulti = \";\"\n\n[columns.deleted]",
        ),
    );
    let r = import(&e, "con", true);
    assert_eq!(summary(&r), s("full", [2, 0, 0, 0, 2]));
    assert!(
        r["note"].as_str().unwrap_or("").contains("rules changed"),
        "{r}"
    );
    // The full read recorded a watermark under the new rules.
    assert_eq!(summary(&import(&e, "con", true)).0, "watermark");
}
