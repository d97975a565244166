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
