//! Unit tests of the renderings' shared view, the JSON and the CSV files.

use super::*;
use crate::report::{Section, TargetSummary};

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|s| s.to_string()).collect()
}

fn section(key: &str, columns: &[&str], rows: Vec<Vec<String>>) -> Section {
    Section {
        key: key.into(),
        title: format!("Title of {key}"),
        about: "What these rows are.".into(),
        columns: row(columns),
        rows,
    }
}

fn sample() -> Report {
    Report {
        title: "Reconciliation".into(),
        generated_at: "2026-11-24T10:00:00Z".into(),
        period: "since 2026-11-01".into(),
        store: "idsync.db".into(),
        targets: vec![
            TargetSummary {
                target: "directory".into(),
                kind: "ldap".into(),
                accounts: 1200,
                counts: vec![("orphans".into(), 2), ("missing".into(), 0)],
                quarantined: None,
            },
            TargetSummary {
                target: "app".into(),
                kind: "scim".into(),
                accounts: 800,
                counts: vec![("orphans".into(), 0)],
                quarantined: Some("three unreachable answers".into()),
            },
        ],
        sections: vec![
            section(
                "orphans",
                &["identity", "object", "run"],
                vec![
                    row(&["", "uid=<script>,ou=people", "12"]),
                    row(&["W1", "O'Brien, \"Zoë\" & co\nline 2", "13"]),
                ],
            ),
            section("missing", &["identity", "target"], vec![]),
        ],
    }
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn json_rows_are_objects_in_column_order_and_counts_cover_every_section() {
    let text = json(&sample());
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["title"], "Reconciliation");
    assert_eq!(v["period"], "since 2026-11-01");
    let orphans = &v["sections"][0];
    assert_eq!(orphans["key"], "orphans");
    assert_eq!(
        orphans["columns"],
        serde_json::json!(["identity", "object", "run"])
    );
    assert_eq!(
        orphans["rows"][1],
        serde_json::json!({"identity": "W1", "object": "O'Brien, \"Zoë\" & co\nline 2", "run": "13"})
    );
    // Keys keep the column order, not alphabetical order.
    let at = |needle: &str| text.find(needle).unwrap();
    assert!(at("\"identity\": \"W1\"") < at("\"object\": \"O'Brien"));
    assert!(at("\"object\": \"O'Brien") < at("\"run\": \"13\""));
    assert_eq!(v["sections"][1]["rows"], serde_json::json!([]));
    assert_eq!(
        v["targets"][1]["counts"],
        serde_json::json!({"orphans": 0, "missing": 0})
    );
    assert_eq!(v["targets"][0]["quarantined"], serde_json::Value::Null);
    assert_eq!(v["targets"][1]["quarantined"], "three unreachable answers");
}

#[test]
fn csv_files_round_trip_through_the_csv_crate() {
    let dir = tempfile::tempdir().unwrap();
    let report = sample();
    let paths = csv_files(&report, dir.path()).unwrap();
    let names: Vec<_> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["orphans.csv", "missing.csv", "summary.csv"]);
    for (s, p) in report.sections.iter().zip(&paths) {
        let (header, rows) = read_csv(p);
        assert_eq!(header, s.columns);
        assert_eq!(rows, s.rows);
    }
    let (header, rows) = read_csv(&paths[2]);
    assert_eq!(
        header,
        [
            "target",
            "kind",
            "accounts",
            "orphans",
            "missing",
            "quarantined"
        ]
    );
    assert_eq!(
        rows,
        [
            row(&["directory", "ldap", "1200", "2", "0", ""]),
            row(&["app", "scim", "800", "0", "0", "three unreachable answers"]),
        ]
    );
}

#[test]
fn ragged_rows_lose_nothing_and_repeated_columns_are_numbered() {
    let mut report = sample();
    report.sections = vec![section(
        "x",
        &["a", "a"],
        vec![row(&["1"]), row(&["1", "2", "3"])],
    )];
    let tables = tables(&report);
    assert_eq!(tables[0].columns, ["a", "a (2)", "column 3"]);
    let cells: Vec<Vec<&str>> = (0..2).map(|r| tables[0].cells(r).collect()).collect();
    assert_eq!(cells, [vec!["1", "", ""], vec!["1", "2", "3"]]);
    let v: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
    assert_eq!(v["sections"][0]["rows"][1]["column 3"], "3");
    let dir = tempfile::tempdir().unwrap();
    let paths = csv_files(&report, dir.path()).unwrap();
    let (header, rows) = read_csv(&paths[0]);
    assert_eq!(header, ["a", "a (2)", "column 3"]);
    assert_eq!(rows[0], ["1", "", ""]);
}

#[test]
fn unsafe_or_clashing_keys_become_safe_distinct_file_names() {
    let mut report = sample();
    report.sections = vec![
        section("../../etc/passwd", &["a"], vec![]),
        section("summary", &["a"], vec![]),
        section("", &["a"], vec![]),
        section("dup", &["a"], vec![]),
        section("dup", &["a"], vec![]),
    ];
    let slugs: Vec<_> = tables(&report).into_iter().map(|t| t.slug).collect();
    assert_eq!(
        slugs,
        ["______etc_passwd", "summary-2", "section-3", "dup", "dup-2"]
    );
    let dir = tempfile::tempdir().unwrap();
    let written = write_all(&report, dir.path()).unwrap();
    for s in &written.sections {
        assert_eq!(s.csv.parent(), Some(dir.path()));
        assert!(s.csv.exists());
    }
}

#[test]
fn write_all_writes_every_file_and_reports_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report/2026-11");
    let report = sample();
    let written = write_all(&report, &out).unwrap();
    assert_eq!(written.html, out.join("reconcile.html"));
    assert_eq!(written.json, out.join("reconcile.json"));
    assert_eq!(written.summary_csv, out.join("summary.csv"));
    let counts: Vec<_> = written
        .sections
        .iter()
        .map(|s| (s.key.as_str(), s.rows))
        .collect();
    assert_eq!(counts, [("orphans", 2), ("missing", 0)]);
    assert_eq!(
        std::fs::read_to_string(&written.html).unwrap(),
        html(&report)
    );
    assert_eq!(
        std::fs::read_to_string(&written.json).unwrap(),
        json(&report)
    );
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "missing.csv",
            "orphans.csv",
            "reconcile.html",
            "reconcile.json",
            "summary.csv"
        ],
        "no temporary file is left behind"
    );
}

#[test]
fn a_folder_that_cannot_be_made_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = write_all(&sample(), &file.join("sub")).unwrap_err();
    assert!(err.to_string().contains("a-file"), "{err}");
}

#[test]
fn counts_missing_from_sections_still_appear() {
    let mut report = sample();
    report.targets[0].counts.push(("export-errors".into(), 4));
    report.targets[0].counts.push(("orphans".into(), 1));
    let tables = tables(&report);
    let keys: Vec<_> = count_columns(&report, &tables)
        .iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(keys, ["orphans", "missing", "export-errors"]);
    assert_eq!(count(&report.targets[0], "orphans"), 3, "repeats add up");
}
