//! The bundled example, end to end through the binary, checked against the
//! truth table that comes with the data (`fixtures/hr/truth.csv`): who must
//! merge, who must stay apart, what is ambiguous, which rows are rejected.

mod common;
use common::*;
use std::collections::BTreeSet;

fn identity(e: &Env, agent: &str, anchor: &str) -> Option<i64> {
    let out = e.idsync(&["show", "--json", &format!("{agent}:{anchor}")]);
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v[0]["id"].as_i64()
}

#[test]
fn the_example_consolidates_three_hr_sources_as_the_truth_table_says() {
    let e = example_env();
    let out = e.idsync(&["run", "nightly"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("fixtures/hr/workday.csv:27: column \"Birth_Date\""),
        "{text}"
    );

    let mut truth = csv::Reader::from_path(repo().join("fixtures/hr/truth.csv")).expect("truth");
    let mut seen_ids: BTreeSet<i64> = BTreeSet::new();
    let mut checked = 0;
    for row in truth.records() {
        let row = row.expect("row");
        let (person, expect) = (&row[0], &row[4]);
        let records: Vec<(&str, &str)> = [
            ("workday", &row[1]),
            ("sap", &row[2]),
            ("contractors", &row[3]),
        ]
        .into_iter()
        .flat_map(|(a, v)| v.split('|').filter(|s| !s.is_empty()).map(move |s| (a, s)))
        .collect();
        let ids: Vec<Option<i64>> = records.iter().map(|(a, k)| identity(&e, a, k)).collect();
        match expect {
            "merged" => {
                assert!(
                    ids.iter().all(|i| i.is_some() && *i == ids[0]),
                    "{person}: {records:?} -> {ids:?}"
                );
                assert!(
                    seen_ids.insert(ids[0].unwrap_or(-1)),
                    "{person} shares an identity with another person"
                );
            }
            "separate" => {
                assert_eq!(records.len(), 1, "{person}");
                let id = ids[0].unwrap_or_else(|| panic!("{person}: {records:?} has no identity"));
                assert!(
                    seen_ids.insert(id),
                    "{person} ({records:?}) merged with another person"
                );
            }
            "ambiguous" => {
                // The HR duplicates keep their own identities; the other record waits for a decision.
                for ((agent, anchor), id) in records.iter().zip(&ids) {
                    if *agent == "workday" {
                        assert!(id.is_some_and(|i| seen_ids.insert(i)), "{person}: {anchor}");
                    } else {
                        assert_eq!(*id, None, "{person}: {agent} {anchor} must not be joined");
                    }
                }
                let status = stdout(&e.idsync(&["status"]));
                let other = records
                    .iter()
                    .find(|(a, _)| *a != "workday")
                    .map(|r| r.1)
                    .unwrap_or("");
                assert!(status.contains(other), "{status}");
            }
            "out-of-scope" => {
                for ((agent, anchor), id) in records.iter().zip(&ids) {
                    assert_eq!(
                        *id, None,
                        "{person}: {agent} {anchor} is out of scope but has an identity"
                    );
                }
            }
            "rejected" => {
                // A rejected row never reaches the connector space, unless another row owns its anchor.
                if let Some((agent, anchor)) = records.first() {
                    let owner = identity(&e, agent, anchor);
                    let dup_owner = row[5].contains("duplicate");
                    assert!(
                        owner.is_none() || dup_owner,
                        "{person}: {agent} {anchor} was staged"
                    );
                }
            }
            other => panic!("unknown expectation {other:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 40, "truth table has {checked} rows");
}

#[test]
fn a_second_run_changes_nothing_and_runs_are_recorded() {
    let e = example_env();
    assert!(e.idsync(&["run", "nightly"]).status.success());
    let out = e.idsync(&["run", "nightly", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let sync = &v["steps"][3]["sync"]["counters"];
    assert_eq!(sync["mv_adds"], 0, "{v}");
    assert_eq!(sync["mv_updates"], 0, "{v}");
    assert!(sync["mv_unchanged"].as_u64().unwrap_or(0) >= 40, "{v}");
    let imp = &v["steps"][0]["import"]["counts"];
    assert_eq!(
        (imp["adds"].as_u64(), imp["updates"].as_u64()),
        (Some(0), Some(0)),
        "{v}"
    );

    let runs = stdout(&e.idsync(&["runs"]));
    assert!(runs.contains("run nightly"), "{runs}");
    let detail = stdout(&e.idsync(&["runs", "show", "1"]));
    assert!(
        detail.contains("fixtures/hr/sap_hr.csv:18: sap: expected 14 fields"),
        "{detail}"
    );
    assert!(detail.contains("ambiguous-join"), "{detail}");
    assert!(detail.contains("dangling-reference"), "{detail}");
}

#[test]
fn search_finds_by_attribute_and_show_explains_lineage() {
    let e = example_env();
    assert!(e.idsync(&["run", "nightly"]).status.success());
    let out = stdout(&e.idsync(&["search", "--mv", "department = \"Finance\""]));
    assert!(out.lines().count() >= 2, "{out}");
    assert!(!out.starts_with("0 found"), "{out}");
    let show = stdout(&e.idsync(&["show", "person", "W100014"]));
    assert!(show.contains("sapPersonnelNumber  00012005"), "{show}");
    assert!(
        show.contains("joined by rule by-workday-id on W100014"),
        "{show}"
    );
    assert!(
        show.contains("<- workday W100014 (run 1), sap 00012005 (run 1)"),
        "{show}"
    );
}

#[test]
fn an_object_that_leaves_scope_disconnects_and_the_identity_stays() {
    let e = example_env();
    assert!(e.idsync(&["run", "nightly"]).status.success());
    let before = identity(&e, "sap", "00012005").expect("joined");
    // Kwame Mensah is withdrawn in SAP (STAT2 0): out of SAP's inbound scope.
    let path = e.path("fixtures/hr/sap_hr.csv");
    let bytes = std::fs::read(&path).expect("read");
    let mut out = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"00012005;") {
            let mut fields: Vec<Vec<u8>> = line.split(|&b| b == b';').map(<[u8]>::to_vec).collect();
            fields[11] = b"0".to_vec();
            out.extend(fields.join(&b';'));
        } else {
            out.extend_from_slice(line);
        }
    }
    std::fs::write(&path, out).expect("write");
    let run = e.idsync(&["run", "nightly", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    let sync = &v["steps"][3]["sync"]["counters"];
    assert_eq!(sync["disconnects"], 1, "{v}");
    assert_eq!(sync["mv_deletes"], 0, "{v}");
    assert_eq!(identity(&e, "sap", "00012005"), None);
    assert_eq!(
        identity(&e, "workday", "W100014"),
        Some(before),
        "the identity stays with Workday"
    );
}

#[test]
fn eval_prints_a_value_for_a_staged_object_and_check_runs_rule_tests() {
    let e = example_env();
    assert!(e.idsync(&["import", "workday"]).status.success());
    let out = e.idsync(&[
        "eval",
        "--agent",
        "workday",
        "--anchor",
        "W100007",
        r#"Join(".", ToLower(NormalizeDiacritics(Legal_First_Name)), ToLower(NormalizeDiacritics(Legal_Last_Name)))"#,
    ]);
    assert_eq!(stdout(&out).trim(), "jose.hernandez", "{}", stderr(&out));
    let bad = e.idsync(&["eval", "--agent", "workday", "ToLowr(Legal_Frst_Name)"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    assert!(
        err.contains("did you mean \"ToLower\"?")
            && err.contains("did you mean \"Legal_First_Name\"?"),
        "{err}"
    );

    // A rule test that fails names its file, line, attribute, expected and actual values.
    let p = e.path("rules/agents/workday.toml");
    let text = std::fs::read_to_string(&p).expect("read");
    std::fs::write(
        &p,
        text.replace(
            r#"accountName = "jhernandezruiz""#,
            r#"accountName = "pepe""#,
        ),
    )
    .expect("write");
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("workday.toml:") && err.contains(r#"test "display and login names": accountName: expected ["pepe"], got ["jhernandezruiz"]"#), "{err}");
}
