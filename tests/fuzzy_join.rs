//! Fuzzy join rules driven through the binary: an acquired company's HR
//! file shares no key with the system of record, so its people are matched
//! on surname, given name and birth date with hand-set weights. A typo'd
//! surname joins; twins never merge; a day-month swap waits for a person,
//! whose decision outlives full syncs and rule changes; the same inputs
//! give the same identities on one thread or four.

mod common;
use common::*;
use serde_json::Value;

const MV: &str = r#"
[metaverse]
sync_order = ["hr", "sub"]

[metaverse.types.person]
precedence = ["hr", "sub"]
deletion = "last-connector"

[metaverse.types.person.attributes]
employeeId = "string"
subId = "string"
givenName = "string"
sn = "string"
birthDate = "date"
"#;

const HR: &str = r#"
[agent]
name = "hr"
kind = "csv"
object_type = "person"
anchor = "id"
path = "hr.csv"

[[join]]
name = "by-id"
match = [{ cs = "id", mv = "employeeId" }]

[projection]
enabled = true

[flows.import]
employeeId = "id"
givenName = "first"
sn = "last"
birthDate = "dob"
"#;

/// The acquired company's file: no worker id, so the exact rule finds
/// nothing and the fuzzy rule decides.
const SUB: &str = r#"
[agent]
name = "sub"
kind = "csv"
object_type = "person"
anchor = "pernr"
path = "sub.csv"

[[join]]
name = "by-worker-id"
match = [{ cs = "wid", mv = "employeeId" }]

[fuzzy_join]
name = "by-person"
fields = [
  { cs = "last", mv = "sn", kind = "name", levels = ["normalised", { jaro-winkler = 0.92 }, { jaro-winkler = 0.8 }] },
  { cs = "first", mv = "givenName", kind = "name", levels = ["normalised", { jaro-winkler = 0.92 }, "initial"] },
  { cs = "dob", mv = "birthDate", kind = "date", levels = ["exact", "date-one-off", "date-swapped"], review_from = "date-swapped" },
]
blocking = [
  { name = "dob", parts = [{ field = "birthDate", transform = "whole" }] },
  { name = "sound+year", parts = [{ field = "sn", transform = "soundex" }, { field = "birthDate", transform = "year" }] },
]
thresholds = { join = JOIN, review = 4.0, margin = 5.0 }

[fuzzy_join.weights]
lambda = 0.0001
fields = [
  { m = [0.85, 0.1, 0.03, 0.02], u = [0.003, 0.01, 0.05, 0.937] },
  { m = [0.85, 0.08, 0.065, 0.005], u = [0.005, 0.01, 0.02, 0.965] },
  { m = [0.95, 0.02, 0.01, 0.02], u = [0.00005, 0.002, 0.0001, 0.99785] },
]

[projection]
enabled = true

[flows.import]
subId = "pernr"
givenName = "first"
sn = "last"
birthDate = "dob"
"#;

const HR_CSV: &str = "id,first,last,dob
1,Anna,Schneider,1980-03-04
2,Paul,Weber,1975-07-12
3,Peter,Weber,1975-07-12
4,Lena,Fischer,1990-05-02
";

const SUB_CSV: &str = "pernr,wid,first,last,dob
901,,Anna,Schnieder,1980-03-04
902,,Maria,Weber,1975-07-12
903,,Lena,Fischer,1990-02-05
904,,Paul,Weber,1975-07-12
905,,Paul,Weber,1957-01-30
";

fn env(join: &str) -> Env {
    let e = Env::new();
    e.write("rules/metaverse.toml", MV);
    e.write("rules/hr.toml", HR);
    e.write("rules/sub.toml", &SUB.replace("JOIN", join));
    e.write("rules/hr.csv", HR_CSV);
    e.write("rules/sub.csv", SUB_CSV);
    e
}

/// The connector from `agent` of the identity `object` is joined to, as
/// `show` lists it (rule, detail).
fn link(e: &Env, object: &str, agent: &str) -> Value {
    let shown = e.ok_json(&["show", object]);
    shown[0]["connectors"]
        .as_array()
        .expect("connectors")
        .iter()
        .find(|c| c["agent"] == agent)
        .cloned()
        .unwrap_or_else(|| panic!("no {agent} connector: {shown}"))
}

fn load_and_sync(e: &Env) {
    e.ok(&["import", "hr"]);
    e.ok(&["import", "sub"]);
    e.ok(&["sync"]);
}

#[test]
fn typo_joins_twins_stay_apart_and_a_swapped_date_waits_for_review() {
    let e = env("10.0");
    load_and_sync(&e);
    let anna = e.identity_of("hr:1").expect("anna");
    let paul = e.identity_of("hr:2").expect("paul");
    let peter = e.identity_of("hr:3").expect("peter");
    let lena = e.identity_of("hr:4").expect("lena");
    assert_eq!(
        e.identity_of("sub:901"),
        Some(anna),
        "a typo'd surname joins"
    );
    assert_eq!(
        e.identity_of("sub:904"),
        Some(paul),
        "the twin with his name"
    );
    let maria = e.identity_of("sub:902").expect("Maria projects");
    assert!(
        ![anna, paul, peter, lena].contains(&maria),
        "a twin of the same surname and birth date is someone else"
    );
    assert_eq!(e.identity_of("sub:903"), None, "a swapped date waits");
    let other_paul = e.identity_of("sub:905").expect("projected");
    assert!(
        ![anna, paul, peter, lena, maria].contains(&other_paul),
        "the same name with another birth date is another person"
    );

    let link = link(&e, "hr:1", "sub");
    assert_eq!(link["rule"], "by-person", "{link}");
    let detail = link["detail"].as_str().unwrap_or("");
    assert!(detail.starts_with("score "), "{link}");
    assert!(
        detail.contains("sn jaro-winkler >= 0.92 +3.32") && detail.contains("birthDate exact +"),
        "each field's part of the score: {detail}"
    );

    let list = e.ok_json(&["review", "list"]);
    let items = list.as_array().expect("list");
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["anchor"], "903");
    assert_eq!(items[0]["rule"], "by-person");
    let n = items[0]["cs_id"].to_string();

    let text = e.ok(&["review", "show", &n]);
    assert!(text.contains("scores"), "{text}");
    assert!(text.contains("day and month swapped"), "{text}");
    let show = e.ok_json(&["review", "show", &n]);
    let scores = show["scores"].as_array().expect("scores");
    assert_eq!(scores[0]["mv"], lena);
    let fields: Vec<(&str, &str)> = scores[0]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap_or(""),
                f["level"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("sn", "normalised"),
            ("givenName", "normalised"),
            ("birthDate", "day and month swapped")
        ]
    );
    let total: f64 = scores[0]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["weight"].as_f64().unwrap_or(0.0))
        .sum();
    let prior = (0.0001f64 / 0.9999).log2();
    let score = scores[0]["score"].as_f64().expect("score");
    assert!((prior + total - score).abs() < 1e-9, "{score} {total}");

    e.ok(&["review", "accept", &n, "--candidate", "1"]);
    e.ok(&["sync"]);
    assert_eq!(e.identity_of("sub:903"), Some(lena));
    assert!(
        e.ok_json(&["review", "list"])
            .as_array()
            .expect("list")
            .is_empty()
    );

    // A rule change that would join nothing fuzzily: the decision stands.
    e.write("rules/sub.toml", &SUB.replace("JOIN", "90.0"));
    e.ok(&["sync"]);
    assert_eq!(e.identity_of("sub:903"), Some(lena));
    assert_eq!(e.identity_of("sub:901"), Some(anna));
}

#[test]
fn same_identities_on_one_thread_or_four() {
    let run = |threads: &str| -> Vec<Option<i64>> {
        let e = env("10.0");
        for args in [&["import", "hr"][..], &["import", "sub"], &["sync"]] {
            let out = e.idsync_env(args, &[("RAYON_NUM_THREADS", threads)]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        [
            "hr:1", "hr:2", "hr:3", "hr:4", "sub:901", "sub:902", "sub:903", "sub:904",
        ]
        .iter()
        .map(|o| e.identity_of(o))
        .collect()
    };
    let one = run("1");
    assert_eq!(one, run("4"));
    assert_eq!(one[4], one[0]);
}

#[test]
fn a_rule_without_weights_is_refused_with_the_way_out() {
    let e = env("10.0");
    let start = SUB.find("[fuzzy_join.weights]").expect("weights");
    let end = SUB.find("[projection]").expect("projection");
    let text = format!("{}{}", &SUB[..start], &SUB[end..]).replace("JOIN", "10.0");
    e.write("rules/sub.toml", &text);
    let out = e.idsync(&["check"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("train-join sub"), "{}", stderr(&out));
}

#[test]
fn a_misspelt_blocking_field_is_an_error_with_its_place() {
    let e = env("10.0");
    e.write(
        "rules/sub.toml",
        &SUB.replace("JOIN", "10.0").replace(
            "{ field = \"birthDate\", transform = \"whole\" }",
            "{ field = \"birthDat\", transform = \"whole\" }",
        ),
    );
    let out = e.idsync(&["check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("sub.toml:"), "{err}");
    assert!(err.contains("\"birthDat\""), "{err}");
    assert!(err.contains("birthDate"), "{err}");
}

#[test]
fn train_join_writes_weights_the_rule_then_uses_and_keeps_the_rest_of_the_file() {
    let e = env("10.0");
    let start = SUB.find("[fuzzy_join.weights]").expect("weights");
    let end = SUB.find("[projection]").expect("projection");
    let text =
        format!("{}# kept as written\n{}", &SUB[..start], &SUB[end..]).replace("JOIN", "10.0");
    let file = e.write("rules/sub.toml", &text);
    e.ok(&["import", "hr"]);
    e.ok(&["import", "sub"]);
    // Without weights the sync joins and projects none of sub's objects.
    e.ok(&["sync"]);
    assert_eq!(e.identity_of("sub:904"), None);

    let out = e.ok(&["train-join", "sub"]);
    assert!(out.contains("weights written"), "{out}");
    let written = std::fs::read_to_string(&file).expect("rule file");
    assert!(written.contains("# kept as written"), "{written}");
    assert!(written.starts_with(&text[..start]), "{written}");
    let doc: toml::Table = toml::from_str(&written).expect("toml");
    let fields = doc["fuzzy_join"]["weights"]["fields"]
        .as_array()
        .expect("fields");
    assert_eq!(fields.len(), 3);
    for f in fields {
        assert_eq!(f["m"].as_array().map(Vec::len), Some(4));
        assert_eq!(f["u"].as_array().map(Vec::len), Some(4));
    }
    let check = e.ok(&["check"]);
    assert!(check.contains("blocking key dob"), "{check}");
}

/// A fuzzy rule added after the agent's objects all projected: there is no
/// unjoined object left, so training reads every object against the
/// identities the agent has no connector to, and says so.
#[test]
fn train_join_after_the_agent_projected_reads_every_object() {
    let e = env("10.0");
    let start = SUB.find("[fuzzy_join]").expect("rule");
    let end = SUB.find("[projection]").expect("projection");
    let without = format!("{}{}", &SUB[..start], &SUB[end..]);
    e.write("rules/sub.toml", &without);
    load_and_sync(&e);
    assert!(e.identity_of("sub:904").is_some(), "projected");
    let weights = SUB.find("[fuzzy_join.weights]").expect("weights");
    e.write(
        "rules/sub.toml",
        &format!("{}{}", &SUB[..weights], &SUB[end..]).replace("JOIN", "10.0"),
    );
    let v = e.ok_json(&["train-join", "sub"]);
    assert_eq!(v["every_object"], true, "{v}");
    assert_eq!(v["objects"], 5, "{v}");
    // The identities sub projected are not on the right: 4 from hr.
    assert_eq!(v["identities"], 4, "{v}");
    assert_eq!(v["weights"]["fields"].as_array().map(Vec::len), Some(3));
    e.ok(&["check"]);
}

#[test]
fn review_from_names_a_level_by_its_label_and_an_unknown_one_is_an_error() {
    let e = env("10.0");
    let labelled = SUB.replace("JOIN", "10.0").replace(
        "{ jaro-winkler = 0.8 }] },",
        "{ jaro-winkler = 0.8 }], review_from = \"jaro-winkler >= 0.8\" },",
    );
    assert_ne!(labelled, SUB.replace("JOIN", "10.0"));
    e.write("rules/sub.toml", &labelled);
    e.ok(&["check"]);
    e.write(
        "rules/sub.toml",
        &labelled.replace("\"jaro-winkler >= 0.8\" }", "\"date-swaped\" }"),
    );
    let out = e.idsync(&["check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("review_from \"date-swaped\" is not a level"),
        "{err}"
    );
    assert!(err.contains("normalised, jaro-winkler >= 0.92"), "{err}");
}

#[test]
fn train_join_names_an_agent_without_a_fuzzy_rule() {
    let e = env("10.0");
    let out = e.idsync(&["train-join", "hr"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has no [fuzzy_join]"),
        "{}",
        stderr(&out)
    );
}

/// A delta sync finds a fuzzy rule's candidates through the blocking keys
/// the store keeps, without loading every identity.
#[test]
fn a_delta_sync_finds_fuzzy_candidates_by_their_blocking_keys() {
    let e = env("10.0");
    load_and_sync(&e);
    e.write(
        "rules/hr.csv",
        &format!("{HR_CSV}6,Jonas,Becker,1985-11-30\n"),
    );
    e.ok(&["import", "hr", "--delta"]);
    assert_eq!(e.ok_json(&["sync", "--delta"])["mode"], "delta");
    let jonas = e.identity_of("hr:6").expect("jonas");

    e.write(
        "rules/sub.csv",
        &format!("{SUB_CSV}906,,Jonas,Bekcer,1985-11-30\n"),
    );
    e.ok(&["import", "sub", "--delta"]);
    let report = e.ok_json(&["sync", "--delta"]);
    assert_eq!(report["mode"], "delta", "{report}");
    assert_eq!(report["counters"]["joins"], 1, "{report}");
    assert_eq!(e.identity_of("sub:906"), Some(jonas));
}

/// An object whose own worker id differs from the candidate's is another
/// worker by the systems' own keys: however close the names and dates,
/// the fuzzy rule sends it to review, never joins it.
#[test]
fn different_worker_ids_are_never_joined_by_score() {
    let e = env("10.0");
    e.write(
        "rules/hr.csv",
        &format!("{HR_CSV}8,Karl,Lehmann,1970-10-10\n"),
    );
    e.write(
        "rules/sub.csv",
        &format!("{SUB_CSV}908,77,Karl,Lehmann,1970-10-10\n"),
    );
    load_and_sync(&e);
    let karl = e.identity_of("hr:8").expect("karl");
    assert_eq!(e.identity_of("sub:908"), None, "held for a person");
    let list = e.ok_json(&["review", "list"]);
    let waiting: Vec<(&str, &Value)> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|i| (i["anchor"].as_str().unwrap_or(""), &i["candidates"]))
        .collect();
    assert!(
        waiting.contains(&("908", &serde_json::json!([karl]))),
        "{list}"
    );
}

/// A contractor database that knows people by their own number, with a
/// worker id only for those converted to employees, which it flows but
/// does not join on. Its fuzzy rule is the subsidiary's.
fn ctr_rules() -> String {
    let rule = &SUB
        [SUB.find("[fuzzy_join]").expect("rule")..SUB.find("[projection]").expect("projection")];
    format!(
        r#"
[agent]
name = "ctr"
kind = "csv"
object_type = "person"
anchor = "cid"
path = "ctr.csv"

{}
[projection]
enabled = true

[flows.import]
employeeId = "emp"
givenName = "first"
sn = "last"
birthDate = "dob"
"#,
        rule.replace("JOIN", "10.0")
    )
}

/// Three sources: A~B by the subsidiary's worker id, B~C by a score the
/// identity's own values (A's) would not reach, so C joins A and B's
/// identity through B's record, in either sync order: with the contractors
/// before the subsidiary, C waits to project until B has joined. A
/// contractor whose worker id differs from the identity's is held for a
/// person however well the names agree.
#[test]
fn an_identity_is_the_cluster_of_its_records_and_never_holds_two_worker_ids() {
    for order in [r#"["hr", "sub", "ctr"]"#, r#"["hr", "ctr", "sub"]"#] {
        cluster_in_order(order);
    }
}

fn cluster_in_order(order: &str) {
    let e = Env::new();
    e.write(
        "rules/metaverse.toml",
        &MV.replace(
            r#"sync_order = ["hr", "sub"]"#,
            &format!("sync_order = {order}"),
        )
        .replace(r#"["hr", "sub"]"#, r#"["hr", "sub", "ctr"]"#)
        .replace(
            r#"deletion = "last-connector""#,
            "deletion = \"last-connector\"\nauthoritative_keys = [\"employeeId\"]",
        ),
    );
    e.write("rules/hr.toml", HR);
    e.write("rules/sub.toml", &SUB.replace("JOIN", "10.0"));
    e.write("rules/ctr.toml", &ctr_rules());
    e.write(
        "rules/hr.csv",
        "id,first,last,dob\n10,Katharina,Mueller,1980-03-04\n11,Hans,Wagner,1965-06-15\n",
    );
    e.write(
        "rules/sub.csv",
        "pernr,wid,first,last,dob\n910,10,Katrin,Mueller-Schmidt,1980-03-04\n",
    );
    e.write(
        "rules/ctr.csv",
        "cid,emp,first,last,dob\nC1,,Katrin,Mueller-Schmidt,1980-03-04\nC2,99,Hans,Wagner,1965-06-15\n",
    );
    e.ok(&["import", "hr"]);
    e.ok(&["import", "sub"]);
    e.ok(&["import", "ctr"]);
    let report = e.ok_json(&["sync"]);
    let katharina = e.identity_of("hr:10").expect("katharina");
    assert_eq!(e.identity_of("sub:910"), Some(katharina), "by worker id");
    assert_eq!(
        e.identity_of("ctr:C1"),
        Some(katharina),
        "{order}: joined through the subsidiary's record: {report}"
    );
    let link = link(&e, "ctr:C1", "ctr");
    let detail = link["detail"].as_str().unwrap_or("");
    assert!(detail.contains("via sub 910"), "{detail}");

    let hans = e.identity_of("hr:11").expect("hans");
    assert_eq!(e.identity_of("ctr:C2"), None, "held for a person");
    let errors = report["errors"].as_array().expect("errors");
    let why = errors
        .iter()
        .find(|x| x["anchor"] == "C2")
        .and_then(|x| x["message"].as_str())
        .unwrap_or("");
    assert!(
        why.contains("employeeId 11") && why.contains("would add 99"),
        "{report}"
    );
    let list = e.ok_json(&["review", "list"]);
    assert!(
        list.as_array()
            .expect("list")
            .iter()
            .any(|i| i["anchor"] == "C2" && i["candidates"] == serde_json::json!([hans])),
        "{list}"
    );

    // The reconciliation report lists the item with its score.
    let out = e.path("report");
    e.ok(&["report", "reconcile", "--out", out.to_str().expect("utf-8")]);
    let csv = std::fs::read_to_string(out.join("ambiguous-joins.csv")).expect("csv");
    let row = csv.lines().find(|l| l.contains("ctr:C2")).unwrap_or("");
    assert!(
        row.contains(&format!("{hans} (Hans Wagner, score 16.48)")),
        "{csv}"
    );

    // Without the key in the contractor's row, the same person joins.
    e.write(
        "rules/ctr.csv",
        "cid,emp,first,last,dob\nC1,,Katrin,Mueller-Schmidt,1980-03-04\nC2,,Hans,Wagner,1965-06-15\n",
    );
    e.ok(&["import", "ctr"]);
    e.ok(&["sync"]);
    assert_eq!(e.identity_of("ctr:C2"), Some(hans));
}

/// With a term-frequency field the delta sync weighs values by the counts
/// the last full sync kept, so it stays a delta sync and decides as a full
/// sync does; a store without those counts runs it as a full one.
#[test]
fn a_delta_sync_weighs_term_frequencies_as_the_last_full_sync_counted_them() {
    let tf = |e: &Env| {
        e.write(
            "rules/sub.toml",
            &SUB.replace("JOIN", "10.0").replace(
                r#"{ jaro-winkler = 0.8 }] },"#,
                r#"{ jaro-winkler = 0.8 }], term_frequency = true },"#,
            ),
        );
    };
    let day2_hr = format!("{HR_CSV}6,Jonas,Becker,1985-11-30\n");
    let day2_sub = format!("{SUB_CSV}906,,Jonas,Becker,1985-11-30\n");
    // One store syncs day 2 by delta, the other by a full sync.
    let delta = env("10.0");
    tf(&delta);
    load_and_sync(&delta);
    let full = env("10.0");
    tf(&full);
    load_and_sync(&full);
    for e in [&delta, &full] {
        e.write("rules/hr.csv", &day2_hr);
        e.write("rules/sub.csv", &day2_sub);
        e.ok(&["import", "hr", "--delta"]);
        e.ok(&["import", "sub", "--delta"]);
    }
    let report = delta.ok_json(&["sync", "--delta"]);
    assert_eq!(report["mode"], "delta", "{report}");
    assert_eq!(report["counters"]["joins"], 1, "{report}");
    full.ok(&["sync"]);
    let jonas = delta.identity_of("hr:6").expect("jonas");
    assert_eq!(delta.identity_of("sub:906"), Some(jonas));
    let detail = |e: &Env| link(e, "sub:906", "sub")["detail"].to_string();
    let (d, f) = (detail(&delta), detail(&full));
    assert!(d.contains("sn normalised"), "{d}");
    assert_eq!(full.identity_of("sub:906"), full.identity_of("hr:6"));
    // The surname's weight is its rarity: by yesterday's counts in the
    // delta sync, by today's in the full one: on ten people, one new name
    // moves it a little.
    let sn = |s: &str| -> f64 {
        s.split("sn normalised ")
            .nth(1)
            .and_then(|x| x.split(',').next())
            .and_then(|x| x.parse().ok())
            .unwrap_or(f64::NAN)
    };
    assert!((sn(&d) - sn(&f)).abs() < 0.5, "{d} / {f}");

    // Without kept counts (a store older than them), a delta sync is full.
    let conn = rusqlite::Connection::open(delta.store()).expect("store");
    conn.execute("DELETE FROM meta WHERE key LIKE 'fuzzy_frequencies:%'", [])
        .expect("delete");
    drop(conn);
    delta.write(
        "rules/sub.csv",
        &format!("{day2_sub}907,,Lena,Fischer,1990-05-02\n"),
    );
    delta.ok(&["import", "sub", "--delta"]);
    assert_eq!(delta.ok_json(&["sync", "--delta"])["mode"], "full");
}
