//! Crash safety: a step killed mid-way leaves the previous state, and
//! running it again finishes the work. `IDSYNC_FAULT` aborts the process at
//! a named point inside the step's transaction, as a kill would.

mod common;
use common::*;

const RULES: &str = r#"
[metaverse]
[metaverse.types.person]
precedence = ["hr"]
[metaverse.types.person.attributes]
employeeId = "string"
sn = "string"

[agent]
name = "hr"
kind = "csv"
object_type = "person"
anchor = "id"
path = "../hr.csv"

[projection]
enabled = true

[flows.import]
employeeId = "id"
sn = "last"
"#;

fn env(rows: usize) -> Env {
    let e = Env::new();
    e.write("rules/all.toml", RULES);
    let mut csv = String::from("id,last\n");
    for i in 0..rows {
        csv.push_str(&format!("E{i:05},Name{i}\n"));
    }
    e.write("hr.csv", &csv);
    e
}

fn counts(e: &Env) -> (i64, i64) {
    let out = e.idsync(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let cs = v["connector_spaces"]
        .as_array()
        .and_then(|a| a.first())
        .map(|c| c["objects"].as_i64().unwrap_or(0))
        .unwrap_or(0);
    let mv = v["metaverse"]
        .as_array()
        .and_then(|a| a.first())
        .map(|c| c["objects"].as_i64().unwrap_or(0))
        .unwrap_or(0);
    (cs, mv)
}

#[test]
fn an_import_killed_mid_way_stages_nothing_and_a_rerun_finishes() {
    let e = env(3000);
    let out = e.idsync_env(&["import", "hr"], &[("IDSYNC_FAULT", "import-mid")]);
    assert!(!out.status.success(), "the fault must stop the process");
    assert_eq!(counts(&e), (0, 0));
    let runs = stdout(&e.idsync(&["runs"]));
    assert!(runs.contains("running/interrupted"), "{runs}");

    let out = e.idsync(&["import", "hr"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("adds 3000"), "{}", stdout(&out));
    assert_eq!(counts(&e), (3000, 0));
}

#[test]
fn a_sync_killed_before_commit_leaves_the_metaverse_and_a_rerun_finishes() {
    let e = env(3000);
    assert!(e.idsync(&["import", "hr"]).status.success());
    assert!(e.idsync(&["sync"]).status.success());
    // Change every row, then kill the sync that would apply it.
    let mut csv = String::from("id,last\n");
    for i in 0..3000 {
        csv.push_str(&format!("E{i:05},Renamed{i}\n"));
    }
    e.write("hr.csv", &csv);
    assert!(e.idsync(&["import", "hr"]).status.success());
    let out = e.idsync_env(&["sync"], &[("IDSYNC_FAULT", "sync-before-commit")]);
    assert!(!out.status.success());
    let show = stdout(&e.idsync(&["show", "E00042"]));
    assert!(show.contains("Name42"), "the previous state stands: {show}");

    let out = e.idsync(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("updates 3000"), "{}", stdout(&out));
    let show = stdout(&e.idsync(&["show", "E00042"]));
    assert!(show.contains("Renamed42"), "{show}");
    assert_eq!(counts(&e), (3000, 3000));
}

fn pending(e: &Env) -> i64 {
    let out = e.idsync(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["connector_spaces"]
        .as_array()
        .and_then(|a| a.first())
        .map_or(-1, |c| c["pending_imports"].as_i64().unwrap_or(-1))
}

fn renamed(rows: usize, renamed: &[usize]) -> String {
    let mut csv = String::from("id,last\n");
    for i in 0..rows {
        let name = if renamed.contains(&i) {
            "Renamed"
        } else {
            "Name"
        };
        csv.push_str(&format!("E{i:05},{name}{i}\n"));
    }
    csv
}

#[test]
fn a_delta_import_of_a_file_killed_mid_way_neither_skips_nor_repeats_a_change() {
    let e = env(3000);
    assert!(e.idsync(&["import", "hr"]).status.success());
    assert!(e.idsync(&["sync"]).status.success());
    e.write("hr.csv", &renamed(3000, &[5, 2500]));
    for fault in ["import-mid", "import-before-commit"] {
        let out = e.idsync_env(&["import", "hr", "--delta"], &[("IDSYNC_FAULT", fault)]);
        assert!(
            !out.status.success(),
            "the fault {fault} must stop the process"
        );
        assert_eq!(pending(&e), 0, "nothing staged after {fault}");
    }
    // The digest was not committed either: the file is compared again.
    let out = e.idsync(&["import", "hr", "--delta"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("row-compare): read 3000, adds 0, updates 2, deletes 0"),
        "{}",
        stdout(&out)
    );
    assert_eq!(pending(&e), 2);
    // Committed with the batch, the digest now says there is nothing new.
    let out = e.idsync(&["import", "hr", "--delta"]);
    assert!(
        stdout(&out).contains("unchanged): read 0, adds 0, updates 0, deletes 0"),
        "{}",
        stdout(&out)
    );
    assert!(e.idsync(&["sync"]).status.success());
    let show = stdout(&e.idsync(&["show", "E02500"]));
    assert!(show.contains("Renamed2500"), "{show}");
}

const SQL_RULES: &str = r#"
[metaverse]
[metaverse.types.person]
precedence = ["con"]
[metaverse.types.person.attributes]
contractorId = "string"
sn = "string"

[agent]
name = "con"
kind = "sql"
object_type = "person"
anchor = "cid"
path = "../con.db"
table = "contractor"

[agent.delta]
watermark = "updated_at"

[columns.updated_at]
ignore = true

[projection]
enabled = true

[flows.import]
contractorId = "cid"
sn = "last"
"#;

fn write_db(e: &Env, rows: usize, changed: &[usize]) {
    use idsync::connector::sqlite_file::TableWriter;
    let mut w = TableWriter::create(
        &e.path("con.db"),
        "CREATE TABLE contractor (cid TEXT PRIMARY KEY, last TEXT, updated_at TEXT)",
        "contractor",
        3,
    )
    .expect("db");
    for i in 0..rows {
        let (last, at) = if changed.contains(&i) {
            (format!("Renamed{i}"), "2024-02-01T00:00:00".to_string())
        } else {
            (
                format!("Name{i}"),
                format!("2024-01-01T00:{:02}:00", i % 60),
            )
        };
        w.insert(&[Some(format!("C{i:05}")), Some(last), Some(at)])
            .expect("row");
    }
    w.finish().expect("db");
}

#[test]
fn a_delta_import_of_a_sql_source_killed_before_commit_keeps_its_watermark() {
    let e = Env::new();
    e.write("rules/all.toml", SQL_RULES);
    write_db(&e, 3000, &[]);
    assert!(e.idsync(&["import", "con"]).status.success());
    assert!(e.idsync(&["sync"]).status.success());
    let watermark = || {
        idsync::store::Store::open(&e.store())
            .and_then(|s| s.source_marks("con"))
            .expect("marks")
            .watermark
            .unwrap_or_default()
    };
    let before = watermark();
    assert!(before.contains("2024-01-01T00:59:00"), "{before}");

    write_db(&e, 3000, &[7, 1234]);
    let out = e.idsync_env(
        &["import", "con", "--delta"],
        &[("IDSYNC_FAULT", "import-before-commit")],
    );
    assert!(!out.status.success());
    assert_eq!(pending(&e), 0);
    assert_eq!(
        watermark(),
        before,
        "the watermark moves only with its batch"
    );

    // The rerun reads the two changes (and the rows at the old watermark).
    let out = e.idsync(&["import", "con", "--delta"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("watermark): read 52, adds 0, updates 2, deletes 0, unchanged 50"),
        "{}",
        stdout(&out)
    );
    assert!(
        watermark().contains("2024-02-01T00:00:00"),
        "{}",
        watermark()
    );
    // And the next one does not read them as changes again.
    let out = e.idsync(&["import", "con", "--delta"]);
    assert!(
        stdout(&out).contains("watermark): read 2, adds 0, updates 0, deletes 0, unchanged 2"),
        "{}",
        stdout(&out)
    );
    assert_eq!(pending(&e), 2);
}
