//! The spine end to end through the library: staged connector spaces, a
//! real SQLite store, full syncs. Precedence, lineage, joins, ambiguity,
//! deletion rules, references and determinism across thread counts.

mod common;
use common::*;
use idsync::model::MvId;

const MV: &str = r#"
[metaverse]
sync_order = ["hr", "sub"]

[metaverse.types.person]
precedence = ["hr", "sub"]
deletion = "last-connector"

[metaverse.types.person.attributes]
employeeId = "string"
sapId = "string"
givenName = "string"
sn = "string"
birthDate = "date"
department = { type = "string", null = "clear" }
title = "string"
phones = { type = "string", multi = true }
manager = "reference"
note = { type = "string", precedence = "equal" }
"#;

const HR: &str = r#"
[agent]
name = "hr"
kind = "csv"
object_type = "person"
anchor = "id"
path = "hr.csv"
attributes = ["id", "first", "last", "dob", "dept", "title", "phone", "mgr", "note"]

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
department = "dept"
title = "title"
phones = "phone"
manager = { expr = "mgr", ref = "employeeId" }
note = "note"
"#;

const SUB: &str = r#"
[agent]
name = "sub"
kind = "csv"
object_type = "person"
anchor = "pernr"
path = "sub.csv"
attributes = ["pernr", "wid", "first", "last", "dob", "dept", "title", "phone", "note"]

[[join]]
name = "by-worker-id"
match = [{ cs = "wid", mv = "employeeId" }]

[[join]]
name = "by-name-and-birth-date"
match = [
  { cs = "last", mv = "sn", normalize = ["trim", "fold-case", "fold-diacritics"] },
  { cs = "first", mv = "givenName", normalize = ["first-word", "fold-case", "fold-diacritics"] },
  { cs = "dob", mv = "birthDate" },
]

[projection]
enabled = true

[flows.import]
sapId = "pernr"
employeeId = "wid"
givenName = "first"
sn = "last"
birthDate = "dob"
department = "dept"
title = "title"
phones = "phone"
note = "note"
"#;

const HR_NAMES: &[&str] = &[
    "id", "first", "last", "dob", "dept", "title", "phone", "mgr", "note",
];
const SUB_NAMES: &[&str] = &[
    "pernr", "wid", "first", "last", "dob", "dept", "title", "phone", "note",
];

fn env() -> Env {
    let e = Env::new();
    e.write("rules/metaverse.toml", MV);
    e.write("rules/hr.toml", HR);
    e.write("rules/sub.toml", SUB);
    e
}

fn values(e: &Env, key: &str, attr: &str) -> Vec<String> {
    let app = e.app();
    let ids = app.find_identity(Some("person"), key).expect("find");
    assert_eq!(ids.len(), 1, "{key} should be one identity, found {ids:?}");
    let t = app.rules.metaverse.get("person").expect("type");
    let schema_of = |n: &str| app.rules.metaverse.get(n).map(|t| &t.schema);
    let row = app
        .store
        .get_mv(ids[0], &schema_of)
        .expect("get")
        .expect("exists");
    let a = t.schema.get(attr).expect("attr");
    row.attrs.values(a).map(str::to_string).collect()
}

fn sync(e: &Env) -> idsync::app::SyncReport {
    sync_allowing(e, None)
}

/// A full sync, let past the deletion guard up to `allow` removals.
fn sync_allowing(e: &Env, allow: Option<u64>) -> idsync::app::SyncReport {
    let mut app = e.app();
    app.allow_deletes = allow;
    let now = chrono::Utc::now();
    let run = app.begin_run(None, "sync", now).expect("run");
    app.sync(idsync::app::SyncMode::Full, run, 1, now)
        .expect("sync")
}

fn person_count(e: &Env) -> i64 {
    e.app()
        .store
        .mv_summary()
        .expect("summary")
        .iter()
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn ranked_precedence_with_null_skip_and_clear_and_merged_multi_values() {
    let e = env();
    e.stage(
        "hr",
        HR_NAMES,
        &[(
            "H1",
            &[
                ("id", "H1"),
                ("first", "Ann"),
                ("last", "Lee"),
                ("phone", "111"),
            ],
        )],
    );
    e.stage(
        "sub",
        SUB_NAMES,
        &[(
            "S1",
            &[
                ("pernr", "S1"),
                ("wid", "H1"),
                ("first", "ANN"),
                ("last", "LEE"),
                ("dept", "Sales"),
                ("title", "Engineer"),
                ("phone", "222"),
                ("phone", "111"),
            ],
        )],
    );
    let r = sync(&e);
    assert_eq!((r.counters.projections, r.counters.joins), (1, 1));
    // hr ranks first and has a value: it wins.
    assert_eq!(values(&e, "H1", "givenName"), vec!["Ann"]);
    // hr has no title; null = skip lets sub through.
    assert_eq!(values(&e, "H1", "title"), vec!["Engineer"]);
    // hr has no department; null = clear keeps it empty although sub has one.
    assert!(values(&e, "H1", "department").is_empty());
    // Multi-valued: merged in precedence order, no duplicates.
    assert_eq!(values(&e, "H1", "phones"), vec!["111", "222"]);
}

#[test]
fn lineage_names_agent_anchor_and_run_and_survives_unchanged_resync() {
    let e = env();
    e.stage(
        "hr",
        HR_NAMES,
        &[("H1", &[("id", "H1"), ("first", "Ann"), ("last", "Lee")])],
    );
    e.stage(
        "sub",
        SUB_NAMES,
        &[(
            "S1",
            &[("pernr", "S1"), ("wid", "H1"), ("title", "Engineer")],
        )],
    );
    let first = sync(&e).run;
    let second = sync(&e);
    assert_eq!(second.counters.mv_unchanged, 1);
    let app = e.app();
    let id = app.find_identity(None, "sub:S1").expect("find")[0];
    let schema_of = |n: &str| app.rules.metaverse.get(n).map(|t| &t.schema);
    let row = app.store.get_mv(id, &schema_of).expect("get").expect("row");
    let title = &row.lineage()["title"][0];
    assert_eq!(
        (title.agent(), title.anchor(), title.run()),
        ("sub", "S1", first)
    );
    let given = &row.lineage()["givenName"][0];
    assert_eq!((given.agent(), given.anchor()), ("hr", "H1"));
    let links = app.store.links_of(id).expect("links");
    let sub = links.iter().find(|l| l.agent == "sub").expect("sub link");
    assert_eq!(
        (sub.kind.as_str(), sub.rule.as_deref()),
        ("joined", Some("by-worker-id"))
    );
}

#[test]
fn join_rules_in_order_fold_names_and_never_guess_an_ambiguous_join() {
    let e = env();
    e.stage(
        "hr",
        HR_NAMES,
        &[
            (
                "H1",
                &[
                    ("id", "H1"),
                    ("first", "Jürgen"),
                    ("last", "Müller"),
                    ("dob", "1980-02-03"),
                ],
            ),
            // Two records with the same name and birth date (a duplicate in HR).
            (
                "H2",
                &[
                    ("id", "H2"),
                    ("first", "Ann"),
                    ("last", "Lee"),
                    ("dob", "1990-01-01"),
                ],
            ),
            (
                "H3",
                &[
                    ("id", "H3"),
                    ("first", "Ann"),
                    ("last", "Lee"),
                    ("dob", "1990-01-01"),
                ],
            ),
            // Same name, different person.
            (
                "H4",
                &[
                    ("id", "H4"),
                    ("first", "John"),
                    ("last", "Smith"),
                    ("dob", "1970-05-05"),
                ],
            ),
        ],
    );
    e.stage(
        "sub",
        SUB_NAMES,
        &[
            (
                "S1",
                &[
                    ("pernr", "S1"),
                    ("first", "JURGEN K."),
                    ("last", " MULLER "),
                    ("dob", "1980-02-03"),
                ],
            ),
            (
                "S2",
                &[
                    ("pernr", "S2"),
                    ("first", "Ann"),
                    ("last", "LEE"),
                    ("dob", "1990-01-01"),
                ],
            ),
            (
                "S3",
                &[
                    ("pernr", "S3"),
                    ("first", "John"),
                    ("last", "SMITH"),
                    ("dob", "1971-05-05"),
                ],
            ),
        ],
    );
    let r = sync(&e);
    assert_eq!(r.counters.joins, 1, "{r:?}");
    assert_eq!(r.counters.ambiguous, 1);
    // H1..H4 and S3 project; S2 is neither joined nor projected.
    assert_eq!(r.counters.projections, 5);
    assert_eq!(person_count(&e), 5);
    let app = e.app();
    let h1 = app.find_identity(None, "hr:H1").expect("h1");
    assert_eq!(app.find_identity(None, "sub:S1").expect("s1"), h1);
    let link = app
        .store
        .links_of(h1[0])
        .expect("links")
        .into_iter()
        .find(|l| l.agent == "sub")
        .expect("link");
    assert_eq!(link.rule.as_deref(), Some("by-name-and-birth-date"));
    assert_eq!(link.detail.as_deref(), Some("muller + jurgen + 1980-02-03"));
    let amb = app.store.ambiguous().expect("ambiguous");
    assert_eq!(amb.len(), 1);
    let mut expected: Vec<MvId> = ["H2", "H3"]
        .iter()
        .map(|k| app.find_identity(None, &format!("hr:{k}")).expect("id")[0])
        .collect();
    expected.sort();
    assert_eq!(
        (amb[0].anchor.as_str(), amb[0].candidates.clone()),
        ("S2", expected)
    );
    assert!(
        r.errors
            .iter()
            .any(|e| e.kind == "ambiguous-join" && e.anchor.as_deref() == Some("S2"))
    );
    assert_ne!(
        app.find_identity(None, "sub:S3").expect("s3"),
        app.find_identity(None, "hr:H4").expect("h4")
    );
}

#[test]
fn a_new_person_in_two_agents_in_one_sync_is_one_identity() {
    let e = env();
    e.stage(
        "hr",
        HR_NAMES,
        &[(
            "H9",
            &[
                ("id", "H9"),
                ("first", "Zoë"),
                ("last", "Ng"),
                ("dob", "2000-01-01"),
            ],
        )],
    );
    e.stage(
        "sub",
        SUB_NAMES,
        &[(
            "S9",
            &[
                ("pernr", "S9"),
                ("first", "ZOE"),
                ("last", "NG"),
                ("dob", "2000-01-01"),
            ],
        )],
    );
    let r = sync(&e);
    assert_eq!((r.counters.projections, r.counters.joins), (1, 1));
    assert_eq!(person_count(&e), 1);
}

#[test]
fn deletion_rule_last_connector_and_values_fall_back() {
    let e = env();
    e.stage(
        "hr",
        HR_NAMES,
        &[
            (
                "H1",
                &[
                    ("id", "H1"),
                    ("first", "Ann"),
                    ("last", "Lee"),
                    ("title", "Boss"),
                ],
            ),
            ("H2", &[("id", "H2"), ("first", "Bo")]),
        ],
    );
    e.stage(
        "sub",
        SUB_NAMES,
        &[(
            "S1",
            &[("pernr", "S1"), ("wid", "H1"), ("title", "Engineer")],
        )],
    );
    sync(&e);
    assert_eq!(person_count(&e), 2);
    assert_eq!(values(&e, "sub:S1", "title"), vec!["Boss"]);
    // Both leave hr: H2 had no other connector and goes; H1's identity stays with sub.
    e.stage("hr", HR_NAMES, &[]);
    // The whole hr space is more than the guard lets a sync disconnect.
    let mut app = e.app();
    let now = chrono::Utc::now();
    let run = app.begin_run(None, "sync", now).expect("run");
    let stopped = app.sync(idsync::app::SyncMode::Full, run, 1, now);
    assert!(
        matches!(&stopped, Err(idsync::app::AppError::Guard(m)) if m.contains("disconnect 2 of 2 hr objects")),
        "{:?}",
        stopped.map(|r| r.counters)
    );
    drop(app);
    assert_eq!(person_count(&e), 2, "the stopped sync kept nothing");
    let r = sync_allowing(&e, Some(2));
    assert_eq!((r.counters.disconnects, r.counters.mv_deletes), (2, 1));
    assert_eq!(person_count(&e), 1);
    assert_eq!(values(&e, "sub:S1", "title"), vec!["Engineer"]);
    assert!(
        e.app()
            .find_identity(None, "hr:H1")
            .expect("find")
            .is_empty()
    );
}

#[test]
fn references_resolve_and_dangling_and_cycles_are_reported() {
    let e = env();
    e.stage(
        "hr",
        HR_NAMES,
        &[
            ("H1", &[("id", "H1"), ("first", "Ceo")]),
            ("H2", &[("id", "H2"), ("mgr", "H1")]),
            ("H3", &[("id", "H3"), ("mgr", "H2")]),
            ("H4", &[("id", "H4"), ("mgr", "H404")]),
            ("H5", &[("id", "H5"), ("mgr", "H6")]),
            ("H6", &[("id", "H6"), ("mgr", "H5")]),
        ],
    );
    let r = sync(&e);
    let app = e.app();
    let id = |k: &str| app.find_identity(None, &format!("hr:{k}")).expect("find")[0];
    assert_eq!(values(&e, "H3", "manager"), vec![id("H2").to_string()]);
    assert_eq!(values(&e, "H2", "manager"), vec![id("H1").to_string()]);
    assert!(values(&e, "H4", "manager").is_empty());
    assert!(
        r.errors
            .iter()
            .any(|x| x.kind == "dangling-reference" && x.anchor.as_deref() == Some("H4")),
        "{:?}",
        r.errors
    );
    assert!(
        r.errors.iter().any(|x| x.kind == "reference-cycle"),
        "{:?}",
        r.errors
    );
    assert_eq!(r.counters.reference_errors, 2);
}

#[test]
fn equal_precedence_takes_the_last_change() {
    let e = env();
    e.stage(
        "hr",
        HR_NAMES,
        &[("H1", &[("id", "H1"), ("note", "from hr")])],
    );
    e.stage(
        "sub",
        SUB_NAMES,
        &[("S1", &[("pernr", "S1"), ("wid", "H1")])],
    );
    sync(&e);
    assert_eq!(values(&e, "H1", "note"), vec!["from hr"]);
    e.stage(
        "sub",
        SUB_NAMES,
        &[(
            "S1",
            &[("pernr", "S1"), ("wid", "H1"), ("note", "from sub")],
        )],
    );
    sync(&e);
    assert_eq!(
        values(&e, "H1", "note"),
        vec!["from sub"],
        "sub changed last"
    );
    sync(&e);
    assert_eq!(
        values(&e, "H1", "note"),
        vec!["from sub"],
        "nothing changed: value stays"
    );
    e.stage(
        "hr",
        HR_NAMES,
        &[("H1", &[("id", "H1"), ("note", "hr again")])],
    );
    sync(&e);
    assert_eq!(values(&e, "H1", "note"), vec!["hr again"]);
}

/// Many people with collisions, so parallel decisions really interleave.
fn stage_crowd(e: &Env) {
    let firsts = ["Ann", "Bo", "Chen", "Dara", "Eli", "Farah", "Gus"];
    let lasts = ["Lee", "Ng", "Müller", "Smith", "Öztürk"];
    let mut hr: Vec<(String, Vec<(&str, String)>)> = Vec::new();
    let mut sub: Vec<(String, Vec<(&str, String)>)> = Vec::new();
    for i in 0..1500usize {
        let first = firsts[i % firsts.len()].to_string();
        let last = lasts[(i / 7) % lasts.len()].to_string();
        let dob = format!("19{:02}-0{}-1{}", 50 + i % 40, 1 + i % 9, i % 10);
        if i % 3 != 0 {
            hr.push((
                format!("H{i}"),
                vec![
                    ("id", format!("H{i}")),
                    ("first", first.clone()),
                    ("last", last.clone()),
                    ("dob", dob.clone()),
                    ("mgr", format!("H{}", i / 10)),
                ],
            ));
        }
        if i % 100 == 1 {
            // A duplicate HR record: same name and birth date as the next person's.
            let j = i + 1;
            let dob = format!("19{:02}-0{}-1{}", 50 + j % 40, 1 + j % 9, j % 10);
            hr.push((
                format!("T{i}"),
                vec![
                    ("id", format!("T{i}")),
                    ("first", firsts[j % firsts.len()].to_string()),
                    ("last", lasts[(j / 7) % lasts.len()].to_string()),
                    ("dob", dob),
                ],
            ));
        }
        if i % 2 == 0 {
            let wid = if i % 4 == 0 {
                format!("H{i}")
            } else {
                String::new()
            };
            sub.push((
                format!("S{i}"),
                vec![
                    ("pernr", format!("S{i}")),
                    ("wid", wid),
                    ("first", first.to_uppercase()),
                    ("last", last.to_uppercase()),
                    ("dob", dob),
                ],
            ));
        }
    }
    let conv = |rows: &Vec<(String, Vec<(&'static str, String)>)>| -> Vec<(String, Vec<(&'static str, String)>)> { rows.clone() };
    for (agent, names, rows) in [("hr", HR_NAMES, conv(&hr)), ("sub", SUB_NAMES, conv(&sub))] {
        let owned: Vec<(String, Vec<(&str, &str)>)> = rows
            .iter()
            .map(|(a, attrs)| {
                (
                    a.clone(),
                    attrs.iter().map(|(n, v)| (*n, v.as_str())).collect(),
                )
            })
            .collect();
        let refs: Vec<(&str, &[(&str, &str)])> = owned
            .iter()
            .map(|(a, v)| (a.as_str(), v.as_slice()))
            .collect();
        e.stage(agent, names, &refs);
    }
}

#[test]
fn the_plan_is_identical_on_one_and_two_threads_and_across_runs() {
    let e = env();
    stage_crowd(&e);
    let app = e.app();
    let now = chrono::Utc::now();
    let plan_on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let sync = app.prepare_sync(7, now).expect("load");
        pool.install(|| sync.plan())
    };
    let one = plan_on(1);
    let two = plan_on(2);
    let again = plan_on(2);
    assert!(
        one.counters.joins > 100 && one.counters.ambiguous > 0,
        "{:?}",
        one.counters
    );
    assert_eq!(one, two);
    assert_eq!(two, again);
}

#[test]
fn select_unique_value_tries_candidates_only_as_far_as_it_needs() {
    let e = env();
    // The second candidate fails for a note that is not a number: that
    // matters only to an identity whose first candidate is taken.
    e.write(
        "rules/hr.toml",
        &HR.replace(
            r#"title = "title""#,
            r#"title = '''SelectUniqueValue(ToLower(first & last), ToLower(last) & CNumber(note), ToLower(first & last) & "2")'''"#,
        ),
    );
    // Everyone is Ann Lee; only the id and the note differ.
    type Person = (&'static str, Vec<(&'static str, &'static str)>);
    let ann_lee = |id: &'static str, note: &'static str| -> Person {
        (
            id,
            vec![
                ("id", id),
                ("first", "Ann"),
                ("last", "Lee"),
                ("note", note),
            ],
        )
    };
    let stage = |people: &[Person]| {
        let rows: Vec<(&str, &[(&str, &str)])> = people
            .iter()
            .map(|(a, attrs)| (*a, attrs.as_slice()))
            .collect();
        e.stage("hr", HR_NAMES, &rows);
    };
    let mut people = vec![ann_lee("H1", "x"), ann_lee("H2", "y"), ann_lee("H3", "7")];
    stage(&people);
    let r = sync(&e);
    assert_eq!(values(&e, "H1", "title"), vec!["annlee"]);
    assert!(values(&e, "H2", "title").is_empty());
    assert_eq!(values(&e, "H3", "title"), vec!["lee7"]);
    let flow_errors: Vec<_> = r
        .errors
        .iter()
        .filter(|x| x.kind == "flow-error")
        .map(|x| (x.anchor.as_deref().unwrap_or(""), x.message.as_str()))
        .collect();
    assert_eq!(flow_errors.len(), 1, "{flow_errors:?}");
    assert_eq!(flow_errors[0].0, "H2");
    assert!(flow_errors[0].1.contains("CNumber"), "{flow_errors:?}");
    assert_eq!(r.counters.flow_errors, 1);

    // A delta sync (which asks the store who holds each candidate) decides
    // newcomers the same way.
    people.extend([ann_lee("H4", "8"), ann_lee("H5", "7")]);
    stage(&people);
    let mut app = e.app();
    let now = chrono::Utc::now();
    let run = app.begin_run(None, "sync", now).expect("run");
    let r = app
        .sync(idsync::app::SyncMode::Delta, run, 1, now)
        .expect("delta sync");
    assert_eq!(r.counters.mv_adds, 2);
    drop(app);
    assert_eq!(values(&e, "H1", "title"), vec!["annlee"]);
    assert_eq!(values(&e, "H3", "title"), vec!["lee7"]);
    assert_eq!(values(&e, "H4", "title"), vec!["lee8"]);
    // lee7 is H3's: the third candidate.
    assert_eq!(values(&e, "H5", "title"), vec!["annlee2"]);
}
