//! Provisioning a directory over LDAP, end to end: the bundled example's
//! `directory` and `directory-groups` targets against a private slapd,
//! driven by the binary over the HR days.

mod common;
use common::slapd::Slapd;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

const DAY1: &str = "2026-11-23T02:00:00Z";
const DAY2: &str = "2026-11-24T02:00:00Z";

struct Setup {
    e: Env,
    ldap: Slapd,
}

type Entry = (String, BTreeMap<String, Vec<String>>);

fn setup() -> Setup {
    let ldap = Slapd::start();
    Setup {
        e: example_with_ldap(&ldap),
        ldap,
    }
}

impl Setup {
    fn run(&self, args: &[&str]) -> std::process::Output {
        self.e
            .idsync_env(args, &[("IDSYNC_LDAP_PASSWORD", self.ldap.password())])
    }

    fn ok_json(&self, args: &[&str]) -> Value {
        self.e
            .ok_json_env(args, &[("IDSYNC_LDAP_PASSWORD", self.ldap.password())])
    }

    fn person(&self, uid: &str) -> Vec<Entry> {
        self.ldap.search(
            "dc=example,dc=com",
            &format!("(&(objectClass=inetOrgPerson)(uid={uid}))"),
            &["*", "entryUUID"],
        )
    }

    fn one(&self, uid: &str) -> Entry {
        let mut v = self.person(uid);
        assert_eq!(v.len(), 1, "{uid}: {v:?}");
        v.remove(0)
    }

    fn day(&self, files: &str) {
        hr_day(&self.e, files);
    }
}

fn first<'a>(e: &'a Entry, attr: &str) -> Option<&'a str> {
    e.1.get(attr).and_then(|v| v.first()).map(String::as_str)
}

#[test]
fn people_and_groups_reach_the_directory_and_follow_the_lifecycle() {
    let s = setup();
    // Made by hand before idsync ran, in the wrong place: joined by uid,
    // moved where the rules say, not duplicated.
    s.ldap.ldapadd(
        "dn: uid=sdubois,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: sdubois\ncn: S Dubois\nsn: Dubois\n",
    );
    let hand_uuid = first(&s.one("sdubois"), "entryUUID").unwrap().to_string();
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);
    let r = s.ok_json(&["--as-of", DAY1, "export", "directory"]);
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["joined"], 1, "{r}");
    let created = r["created"].as_u64().unwrap();
    assert!(created > 25, "{r}");
    assert_eq!(
        s.ldap.count("(objectClass=inetOrgPerson)") as u64,
        created + 1
    );

    let sophie = s.one("sdubois");
    assert_eq!(
        sophie.0,
        "uid=sdubois,ou=Finance,ou=people,dc=example,dc=com"
    );
    assert_eq!(
        first(&sophie, "entryUUID"),
        Some(hand_uuid.as_str()),
        "moved, not re-created"
    );
    assert_eq!(first(&sophie, "cn"), Some("Sophie Dubois"));
    assert_eq!(first(&sophie, "mail"), Some("sophie.dubois@example.com"));
    // A reference is the manager's DN; the manager was exported first.
    let boss = first(&sophie, "manager").expect("manager").to_string();
    assert!(boss.starts_with("uid=ijohansson,"), "{boss}");
    // A department's OU is made the first time someone joins it, and a DN
    // value with a comma is escaped (EscapeDN).
    assert!(
        s.ldap
            .count("(&(objectClass=organizationalUnit)(ou=Finance))")
            == 1
    );
    // The initial password was written once.
    let amara = s.one("aokafor");
    assert!(amara.1.contains_key("userPassword"), "{amara:?}");

    // Groups: groupOfNames with the people's DNs.
    let g = s.ok_json(&["--as-of", DAY1, "export", "directory-groups"]);
    assert_eq!(g["failed"], 0, "{g}");
    let finance = s.ldap.search(
        "ou=groups,dc=example,dc=com",
        "(cn=dept-finance)",
        &["member"],
    );
    assert_eq!(finance.len(), 1);
    assert!(
        finance[0].1["member"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&sophie.0)),
        "{finance:?}"
    );

    let c = s.ok_json(&["import", "directory"]);
    assert_eq!(c["not_reimported"], 0, "{c}");
    assert_eq!(c["missing"], 0, "{c}");

    // Day 2: the mover is renamed into Treasury (a new OU), the leaver is
    // disabled and moved to ou=disabled, the joiner is added; group
    // membership follows.
    s.day("fixtures/hr/day2");
    s.ok_json(&["--as-of", DAY2, "run", "nightly"]);
    let plan = s.ok_json(&["export", "directory", "--dry-run"]);
    let ops = plan[0]["plan"].as_array().unwrap();
    assert!(
        ops.iter()
            .any(|o| o["verb"] == "rename" && o["name"] == sophie.0),
        "{plan}"
    );
    let r = s.ok_json(&["--as-of", DAY2, "export", "directory"]);
    assert_eq!(r["failed"], 0, "{r}");
    let moved = s.one("sdubois");
    assert_eq!(
        moved.0,
        "uid=sdubois,ou=Treasury,ou=people,dc=example,dc=com"
    );
    assert_eq!(
        first(&moved, "entryUUID"),
        Some(hand_uuid.as_str()),
        "renamed, not re-added"
    );
    assert_eq!(first(&moved, "title"), Some("Head of Treasury"));
    let jose = s.one("jhernandez");
    assert_eq!(jose.0, "uid=jhernandez,ou=disabled,dc=example,dc=com");
    assert_eq!(first(&jose, "employeeType"), Some("disabled"));
    assert_eq!(s.person("tzielinski").len(), 1, "joiner");
    s.ok_json(&["--as-of", DAY2, "export", "directory-groups"]);
    let treasury = s.ldap.search(
        "ou=groups,dc=example,dc=com",
        "(cn=dept-treasury)",
        &["member"],
    );
    assert_eq!(treasury.len(), 1, "a new department's group");
    assert!(
        treasury[0].1["member"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&moved.0))
    );
    let finance = s.ldap.search(
        "ou=groups,dc=example,dc=com",
        "(cn=dept-finance)",
        &["member"],
    );
    assert!(
        !finance[0].1["member"]
            .iter()
            .any(|m| m.to_lowercase().contains("sdubois"))
    );

    // Day 3: José is back (day 1's files again): re-enabled, moved back.
    s.day("fixtures/hr");
    s.ok_json(&["--as-of", DAY2, "run", "nightly"]);
    s.ok_json(&["--as-of", DAY2, "export", "directory"]);
    let back = s.one("jhernandez");
    assert_eq!(first(&back, "entryUUID"), first(&jose, "entryUUID"));
    assert!(!back.0.contains("ou=disabled"), "{}", back.0);
    assert_ne!(first(&back, "employeeType"), Some("disabled"));
}

#[test]
fn a_directory_that_stops_mid_export_loses_nothing_and_doubles_nothing() {
    let mut s = setup();
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);
    let total = s.ok_json(&["export", "directory", "--dry-run"])[0]["created"]
        .as_u64()
        .unwrap();
    // The directory goes away for the whole export: everything waits.
    s.ldap.stop();
    let out = s.run(&["--as-of", DAY1, "export", "directory"]);
    assert!(!out.status.success());
    s.ldap.restart();
    let status = s.ok_json(&["status"]);
    let dir = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "directory")
        .cloned()
        .expect("directory");
    assert_eq!(dir["pending_exports"].as_u64(), Some(total), "{dir}");

    // Killed mid-export after some objects were written but not recorded
    // (a crash between the directory's answer and the store's commit): the
    // next export meets its own entries and joins them.
    let out = s.e.idsync_env(
        &["--as-of", DAY1, "export", "directory"],
        &[
            ("IDSYNC_LDAP_PASSWORD", s.ldap.password()),
            ("IDSYNC_FAULT", "export-applied"),
        ],
    );
    assert!(!out.status.success(), "aborted at the fault point");
    let written = s.ldap.count("(objectClass=inetOrgPerson)") as u64;
    assert!(written > 0, "some entries reached the directory first");
    let r = s.ok_json(&["--as-of", DAY1, "export", "directory"]);
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(
        s.ldap.count("(objectClass=inetOrgPerson)") as u64,
        total,
        "nothing doubled"
    );
    let again = s.ok_json(&["--as-of", DAY1, "export", "directory"]);
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(again["updated"], 0, "{again}");
}

/// A first export of a few hundred generated people: the target is read
/// first, so the creates need no look-up and go out pipelined. Each object
/// still succeeds or fails on its own: a value the directory refuses, a
/// name taken by an entry idsync may not join, an account made by hand
/// beforehand (joined), and departments whose OU does not exist yet.
#[test]
fn a_pipelined_first_export_keeps_each_object_to_itself() {
    let s = setup();
    let dir = s.e.dir.path().to_str().expect("utf-8 path").to_string();
    let g = s.run(&["generate", "--people", "300", "--seed", "7", "--out", &dir]);
    assert!(g.status.success(), "{}", stderr(&g));
    // One worker's address is not ASCII, which `mail` (IA5) refuses.
    let workday = s.e.path("fixtures/hr/workday.csv");
    let mut r = csv::Reader::from_path(&workday).expect("workday.csv");
    let header = r.headers().expect("header").clone();
    let email = header
        .iter()
        .position(|h| h == "Work_Email")
        .expect("email column");
    let status = header
        .iter()
        .position(|h| h == "Worker_Status")
        .expect("status column");
    let mut rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("row")).collect();
    let jose = rows
        .iter()
        .position(|x| &x[status] == "Active" && x[email].contains('@'))
        .expect("an active worker");
    let refused_mail = rows[jose][email].replacen('@', "é@", 1);
    rows[jose] = rows[jose]
        .iter()
        .enumerate()
        .map(|(i, v)| if i == email { refused_mail.as_str() } else { v })
        .collect();
    let mut w = csv::Writer::from_path(&workday).expect("write workday.csv");
    w.write_record(&header).expect("header");
    for x in &rows {
        w.write_record(x).expect("row");
    }
    w.flush().expect("flush");
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);

    let plan = s.ok_json(&["--as-of", DAY1, "export", "directory", "--dry-run"]);
    let creates: Vec<String> = plan[0]["plan"]
        .as_array()
        .expect("plan")
        .iter()
        .filter(|op| op["verb"] == "create" && !op["changes"].to_string().contains("é@"))
        .map(|op| op["name"].as_str().expect("name").to_string())
        .collect();
    let total = plan[0]["created"].as_u64().expect("creates");
    assert!(total >= 200, "{total} creates");
    let uid_of = |dn: &str| dn["uid=".len()..dn.find(',').expect("rdn")].to_string();
    // Made by hand in the wrong OU: joined, then moved.
    let joinee = uid_of(&creates[150]);
    s.ldap.ldapadd(&format!(
        "dn: uid={joinee},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: {joinee}\ncn: x\nsn: x\n"
    ));
    let hand_uuid = first(&s.one(&joinee), "entryUUID")
        .expect("uuid")
        .to_string();
    // The name the export wants, held by an entry outside the agent's filter.
    let taken = creates
        .iter()
        .skip(100)
        .find(|dn| dn.matches(",ou=").count() == 2 && uid_of(dn) != joinee)
        .expect("a create in a department")
        .clone();
    let parent = &taken[taken.find(',').expect("rdn") + 1..];
    let ou = &parent["ou=".len()..parent.find(',').expect("ou")];
    s.ldap.ldapadd(&format!(
        "dn: {parent}\nobjectClass: organizationalUnit\nou: {ou}\n\ndn: {taken}\nobjectClass: account\nuid: {}\n",
        uid_of(&taken)
    ));
    let ous_before = s.ldap.count("(objectClass=organizationalUnit)");

    let r = s.ok_json(&["--as-of", DAY1, "export", "directory"]);
    assert_eq!(r["failed"], 2, "{r}");
    assert_eq!(r["joined"], 1, "{r}");
    assert_eq!(r["created"].as_u64(), Some(total - 3), "{r}");
    let errors: Vec<&str> = r["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("invalidAttributeSyntax (21)")),
        "{errors:?}"
    );
    let not_joinable = format!("{taken:?} already exists in the target, and no account has uid");
    assert!(
        errors.iter().any(|e| e.contains(&not_joinable)),
        "{errors:?}"
    );
    assert_eq!(
        s.ldap.count("(objectClass=inetOrgPerson)") as u64,
        total - 3 + 1
    );
    assert!(s.ldap.count("(objectClass=organizationalUnit)") > ous_before + 3);
    let joined = s.one(&joinee);
    assert_eq!(first(&joined, "entryUUID"), Some(hand_uuid.as_str()));
    assert_eq!(joined.0, creates[150], "moved where the rules say");
    // References are written from the answers: each manager exists.
    let managed = s.ldap.search(
        "dc=example,dc=com",
        "(&(objectClass=inetOrgPerson)(manager=*))",
        &["manager"],
    );
    assert!(managed.len() > 100, "{}", managed.len());
    for (who, a) in &managed {
        let boss = &a["manager"][0];
        let found = s
            .ldap
            .search("dc=example,dc=com", &format!("(entryDN={boss})"), &["1.1"]);
        assert_eq!(found.len(), 1, "{who}: manager {boss}");
    }

    let again = s.ok_json(&["--as-of", DAY1, "export", "directory"]);
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(again["joined"], 0, "{again}");
    assert_eq!(again["failed"], 2, "{again}");
    assert_eq!(
        s.ldap.count("(objectClass=inetOrgPerson)") as u64,
        total - 3 + 1,
        "nothing doubled"
    );
}
