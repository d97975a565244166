//! The review queue and manual decisions, on the bundled example: SAP's
//! record of Priya Sharma matches two Workday identities (she was rehired
//! under a new worker id), so the join waits for a person. Decisions are
//! explicit connectors, projections and disconnectors that every later
//! sync keeps, rule changes included.

mod common;
use common::*;
use serde_json::Value;

const DAY1: &str = "2026-11-23T02:00:00Z";

fn ok_json(e: &Env, args: &[&str]) -> Value {
    e.ok_json(&[&["--as-of", DAY1], args].concat())
}

/// The source objects joined to identity `id`, as `agent anchor`.
fn connectors(e: &Env, id: i64) -> Vec<String> {
    let v = ok_json(e, &["show", &id.to_string()]);
    v[0]["connectors"]
        .as_array()
        .expect("connectors")
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["agent"].as_str().unwrap(),
                c["anchor"].as_str().unwrap()
            )
        })
        .collect()
}

fn queue_is_empty(e: &Env) -> bool {
    ok_json(e, &["review", "list"])
        .as_array()
        .is_some_and(|a| a.is_empty())
}

struct Waiting {
    n: String,
    candidates: Vec<i64>,
}

fn the_one_waiting(e: &Env) -> Waiting {
    let list = ok_json(e, &["review", "list"]);
    let items = list.as_array().expect("list");
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["agent"], "sap");
    assert_eq!(items[0]["anchor"], "00012014");
    Waiting {
        n: items[0]["cs_id"].to_string(),
        candidates: items[0]["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_i64().unwrap())
            .collect(),
    }
}

#[test]
fn an_accepted_candidate_is_joined_and_stays_joined_through_full_syncs_and_rule_changes() {
    let e = example_env();
    ok_json(&e, &["run", "nightly"]);
    let w = the_one_waiting(&e);
    assert_eq!(w.candidates.len(), 2);

    // Side by side: the object's values against each candidate's.
    let show = ok_json(&e, &["review", "show", &w.n]);
    let rows = show["attributes"].as_array().expect("attributes");
    let birth = rows
        .iter()
        .find(|r| r["attribute"] == "birthDate")
        .expect("birthDate");
    assert_eq!(birth["object"], "1987-01-25");
    assert_eq!(birth["candidates"][0], "1987-01-25");
    assert_eq!(birth["candidates"][1], "1987-01-25");
    let ids = rows
        .iter()
        .find(|r| r["attribute"] == "employeeId")
        .expect("employeeId");
    assert_ne!(ids["candidates"][0], ids["candidates"][1], "told apart");

    // The rehired (active) identity is the second candidate.
    let chosen = w.candidates[1];
    ok_json(&e, &["review", "accept", &w.n, "--candidate", "2"]);
    assert_eq!(
        e.identity_of("sap:00012014"),
        None,
        "applied by the next sync"
    );
    ok_json(&e, &["sync", "--delta"]);
    assert_eq!(e.identity_of("sap:00012014"), Some(chosen));
    assert!(queue_is_empty(&e));
    let v = ok_json(&e, &["show", &chosen.to_string()]);
    let link = v[0]["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agent"] == "sap")
        .cloned()
        .expect("sap connector");
    assert_eq!(link["kind"], "joined-by-hand", "{link}");
    let why = e.idsync(&["--as-of", DAY1, "explain", "sap:00012014"]);
    assert!(
        stdout(&why).contains("joined by a person's decision"),
        "{}",
        stdout(&why)
    );

    // A full sync, and a rule change (which makes the next sync full),
    // keep the person's decision.
    ok_json(&e, &["sync"]);
    assert_eq!(e.identity_of("sap:00012014"), Some(chosen));
    let rule = e.path("rules/agents/sap.toml");
    let text = std::fs::read_to_string(&rule).expect("read");
    std::fs::write(&rule, format!("{text}\n# changed\n")).expect("write");
    ok_json(&e, &["sync", "--delta"]);
    assert_eq!(e.identity_of("sap:00012014"), Some(chosen));
    assert!(queue_is_empty(&e));

    let d = ok_json(&e, &["review", "decisions"]);
    assert_eq!(d[0]["kind"], "join");
    assert_eq!(d[0]["mv_id"], chosen);
    assert!(d[0]["applied_run"].as_i64().is_some(), "{d}");
    let audit = ok_json(&e, &["audit", "list", "--limit", "1000"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "decision-made" && r["subject"] == "00012014"),
        "the decision is in the audit log"
    );
}

#[test]
fn a_rejected_object_becomes_a_new_identity_and_a_disconnected_one_stays_alone() {
    let e = example_env();
    ok_json(&e, &["run", "nightly"]);
    let w = the_one_waiting(&e);
    ok_json(&e, &["review", "reject", &w.n]);
    ok_json(&e, &["sync", "--delta"]);
    let own = e.identity_of("sap:00012014").expect("projected");
    assert!(
        !w.candidates.contains(&own),
        "a new identity, not a candidate"
    );
    assert_eq!(connectors(&e, own), vec!["sap 00012014"]);
    ok_json(&e, &["sync"]);
    assert_eq!(
        e.identity_of("sap:00012014"),
        Some(own),
        "kept by a full sync"
    );

    // A wrong join by the rules, undone by hand: the Workday and SAP
    // records of one person are separated, and stay so.
    let anna = e.identity_of("workday:W100006").expect("joined");
    let sap: Vec<String> = connectors(&e, anna)
        .into_iter()
        .filter(|c| c.starts_with("sap "))
        .collect();
    assert_eq!(sap.len(), 1, "{sap:?}");
    let sap_object = sap[0].replacen(' ', ":", 1);
    ok_json(&e, &["disconnect", &sap_object]);
    ok_json(&e, &["sync", "--delta"]);
    assert_eq!(e.identity_of(&sap_object), None);
    assert!(connectors(&e, anna).iter().all(|c| !c.starts_with("sap ")));
    ok_json(&e, &["sync"]);
    assert_eq!(
        e.identity_of(&sap_object),
        None,
        "the rules do not join it again"
    );

    // Joined back by hand.
    ok_json(&e, &["join", &sap_object, "workday:W100006"]);
    ok_json(&e, &["sync", "--delta"]);
    assert_eq!(e.identity_of(&sap_object), Some(anna));
}

#[test]
fn decisions_name_what_is_wrong() {
    let e = example_env();
    ok_json(&e, &["run", "nightly"]);
    let w = the_one_waiting(&e);
    let out = e.idsync(&["review", "accept", &w.n, "--candidate", "3"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("candidates 1 to 2"),
        "{}",
        stderr(&out)
    );
    let out = e.idsync(&["review", "show", "999999"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nothing waits"), "{}", stderr(&out));
    let out = e.idsync(&["join", "sap:nobody", "1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no object \"nobody\""),
        "{}",
        stderr(&out)
    );
    let out = e.idsync(&["disconnect", "W100006"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("agent:anchor"), "{}", stderr(&out));
}
