//! Reconciliation against a real directory: the bundled example's
//! `directory` target on a private slapd, changed by hand with ldapmodify,
//! ldapadd and ldapdelete between idsync's runs.

mod common;
use common::chromium;
use common::slapd::Slapd;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

const DAY1: &str = "2026-11-23T02:00:00Z";
const DAY2: &str = "2026-11-24T02:00:00Z";

type Entry = (String, BTreeMap<String, Vec<String>>);

struct Setup {
    e: Env,
    ldap: Slapd,
}

fn setup() -> Setup {
    let ldap = Slapd::start();
    Setup {
        e: example_with_ldap(&ldap),
        ldap,
    }
}

impl Setup {
    fn ok_json(&self, args: &[&str]) -> Value {
        self.e
            .ok_json_env(args, &[("IDSYNC_LDAP_PASSWORD", self.ldap.password())])
    }

    fn one(&self, uid: &str) -> Entry {
        let mut v = self.ldap.search(
            "dc=example,dc=com",
            &format!("(&(objectClass=inetOrgPerson)(uid={uid}))"),
            &["*", "entryUUID"],
        );
        assert_eq!(v.len(), 1, "{uid}: {v:?}");
        v.remove(0)
    }

    /// The report's sections by key, as the JSON file has them.
    fn report(&self, extra: &[&str]) -> BTreeMap<String, Vec<Value>> {
        let out = self.e.path("report");
        let mut args = vec!["report", "reconcile", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.ok_json(&args);
        report_sections(&out)
    }
}

fn values<'a>(e: &'a Entry, attr: &str) -> Vec<&'a str> {
    e.1.get(attr)
        .map(|v| v.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn changes_by_hand_are_rolled_back_or_reported_and_strangers_and_gaps_are_found() {
    let s = setup();
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);
    let r = s.ok_json(&["--as-of", DAY1, "export", "directory"]);
    assert_eq!(r["failed"], 0, "{r}");

    // Straight after an export the directory is exactly as exported.
    let c = s.ok_json(&["--as-of", DAY1, "import", "directory"]);
    assert_eq!(c["drift_found"], 0, "no drift out of nothing: {c}");
    assert_eq!(c["orphans"], 0, "{c}");
    assert_eq!(c["missing"], 0, "{c}");

    let sophie = s.one("sdubois");
    let dn = sophie.0.clone();
    let title = values(&sophie, "title")[0].to_string();
    // By hand: a title changed (authoritative), a number added (report),
    // a stranger's account added, a colleague's account deleted.
    s.ldap.ldapmodify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: title\ntitle: Chief Everything Officer\n-\nadd: telephoneNumber\ntelephoneNumber: +1 555 0199\n"
    ));
    s.ldap.ldapadd(
        "dn: uid=intruder,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: intruder\ncn: Not Hired\nsn: Hired\n",
    );
    let amara = s.one("aokafor");
    let amara_uuid = values(&amara, "entryUUID")[0].to_string();
    let out = std::process::Command::new("ldapdelete")
        .args([
            "-x",
            "-H",
            &s.ldap.url(),
            "-D",
            s.ldap.admin_dn(),
            "-w",
            s.ldap.password(),
            &amara.0,
        ])
        .output()
        .expect("ldapdelete");
    assert!(out.status.success(), "{}", stderr(&out));

    let c = s.ok_json(&["--as-of", DAY2, "import", "directory"]);
    assert_eq!(c["drift_found"], 2, "title and telephoneNumber: {c}");
    assert_eq!(c["rollbacks_queued"], 1, "{c}");
    assert_eq!(c["orphans_new"], 1, "{c}");
    assert_eq!(c["missing"], 1, "{c}");
    let confirm_run = s.ok_json(&["runs", "--limit", "1"])[0]["run"]["id"]
        .as_i64()
        .unwrap();

    // The plan shows the rollback and the re-creation before anything runs.
    let plan = s.ok_json(&["export", "directory", "--dry-run"]);
    let ops = plan[0]["plan"].as_array().unwrap();
    assert!(ops.iter().any(|o| o["name"] == dn.as_str()), "{plan}");
    assert!(
        ops.iter()
            .any(|o| o["verb"] == "create" && o["name"].as_str().unwrap().contains("aokafor")),
        "{plan}"
    );

    let r = s.ok_json(&["--as-of", DAY2, "export", "directory"]);
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["rolled_back"], 1, "{r}");
    assert_eq!(r["created"], 1, "{r}");
    let sophie = s.one("sdubois");
    assert_eq!(
        values(&sophie, "title"),
        vec![title.as_str()],
        "rolled back"
    );
    assert!(
        values(&sophie, "telephoneNumber").contains(&"+1 555 0199"),
        "a reported value stays: {sophie:?}"
    );
    let amara = s.one("aokafor");
    assert_ne!(values(&amara, "entryUUID")[0], amara_uuid, "created again");
    // The stranger is only reported (the example's policy).
    assert_eq!(s.ldap.count("(uid=intruder)"), 1);

    let c = s.ok_json(&["--as-of", DAY2, "import", "directory"]);
    assert_eq!(c["drift_found"], 0, "{c}");
    assert_eq!(c["drift_open"], 1, "the reported number: {c}");
    assert_eq!(c["missing"], 0, "{c}");
    assert_eq!(c["orphans"], 1, "{c}");

    let report = s.report(&[]);
    let rolled = &report["drift-rolled-back"];
    assert_eq!(rolled.len(), 1, "{rolled:?}");
    assert_eq!(cell(&rolled[0], "attribute"), "title");
    assert_eq!(cell(&rolled[0], "found"), "Chief Everything Officer");
    assert_eq!(cell(&rolled[0], "expected"), title);
    assert_eq!(cell(&rolled[0], "outcome"), "rolled-back");
    assert!(cell(&rolled[0], "detected in run").starts_with(&confirm_run.to_string()));
    let reported = &report["drift-reported"];
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(cell(&reported[0], "attribute"), "telephoneNumber");
    assert_eq!(cell(&reported[0], "outcome"), "reported");
    assert_eq!(cell(&reported[0], "account"), dn);
    let orphans = &report["orphans"];
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert_eq!(
        cell(&orphans[0], "account"),
        "uid=intruder,ou=people,dc=example,dc=com"
    );
    assert!(
        report["missing"]
            .iter()
            .all(|r| cell(r, "target") != "directory")
    );
    // --run narrows the events to one run: the export run rolled nothing
    // back in the confirm run's numbering, and the confirm run has both.
    let only = s.report(&["--run", &confirm_run.to_string()]);
    assert_eq!(only["drift-rolled-back"].len(), 1);
    assert_eq!(only["drift-reported"].len(), 1);

    // The audit log has each finding and each correction, and is intact.
    let v = s.ok_json(&["audit", "verify"]);
    assert_eq!(v["intact"], true, "{v}");
    let records = s.ok_json(&["audit", "list", "--limit", "100000"]);
    let kinds: Vec<(&str, &str)> = records
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or_default(),
                r["subject"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for (kind, subject) in [
        ("drift-detected", dn.as_str()),
        ("drift-rolled-back", dn.as_str()),
        ("orphan-found", "uid=intruder,ou=people,dc=example,dc=com"),
        ("account-missing", amara.0.as_str()),
    ] {
        assert!(
            kinds
                .iter()
                .any(|(k, s)| *k == kind && s.eq_ignore_ascii_case(subject)),
            "no {kind} record for {subject}"
        );
    }
    assert!(
        kinds
            .iter()
            .filter(|(k, _)| *k == "account-created")
            .count()
            > 25
    );
}

#[test]
fn a_leaver_still_enabled_shows_until_the_export_disables_them() {
    let s = setup();
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);
    s.ok_json(&["--as-of", DAY1, "export", "directory"]);
    hr_day(&s.e, "fixtures/hr/day2");
    // The HR day makes José and Yusuf leavers; the directory has not been
    // told yet.
    s.ok_json(&["--as-of", DAY2, "run", "nightly"]);
    let report = s.report(&[]);
    let mut leavers: Vec<&Value> = report["leavers-enabled"]
        .iter()
        .filter(|r| cell(r, "target") == "directory")
        .collect();
    leavers.sort_by_key(|r| cell(r, "account").to_string());
    assert_eq!(leavers.len(), 2, "{leavers:?}");
    assert!(
        cell(leavers[0], "account").contains("uid=jhernandez"),
        "{leavers:?}"
    );
    assert!(
        cell(leavers[1], "account").contains("uid=ydemir"),
        "{leavers:?}"
    );
    assert!(
        cell(leavers[0], "why").contains("next export"),
        "{leavers:?}"
    );

    s.ok_json(&["--as-of", DAY2, "export", "directory"]);
    let report = s.report(&[]);
    assert!(
        report["leavers-enabled"]
            .iter()
            .all(|r| cell(r, "target") != "directory"),
        "{:?}",
        report["leavers-enabled"]
    );

    // Re-enabled by hand in the directory: drift on the disable value,
    // rolled back by the next export. (Changed before the export was
    // confirmed, it would be an exported change not re-imported instead.)
    s.ok_json(&["--as-of", DAY2, "import", "directory"]);
    let jose = s.one("jhernandez");
    s.ldap.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: employeeType\nemployeeType: Employee\n",
        jose.0
    ));
    let c = s.ok_json(&["--as-of", DAY2, "import", "directory"]);
    assert_eq!(c["drift_found"], 1, "{c}");
    s.ok_json(&["--as-of", DAY2, "export", "directory"]);
    assert_eq!(
        values(&s.one("jhernandez"), "employeeType"),
        vec!["disabled"]
    );
}

#[test]
fn the_report_of_a_real_run_renders_in_chromium_and_its_csv_files_agree() {
    let s = setup();
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);
    s.ok_json(&["--as-of", DAY1, "export", "directory"]);
    s.ok_json(&["--as-of", DAY1, "import", "directory"]);
    let sophie = s.one("sdubois");
    s.ldap.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: title\ntitle: Chief <Everything> & Co\n-\nadd: telephoneNumber\ntelephoneNumber: +1 555 0199\n",
        sophie.0
    ));
    s.ldap.ldapadd(
        "dn: uid=intruder,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: intruder\ncn: Not Hired\nsn: Hired\n",
    );
    // Day 2's leavers are not exported to the directory yet.
    hr_day(&s.e, "fixtures/hr/day2");
    s.ok_json(&["--as-of", DAY2, "run", "nightly"]);
    s.ok_json(&["--as-of", DAY2, "import", "directory"]);

    let out = s.e.path("report");
    let w = s.ok_json(&[
        "report",
        "reconcile",
        "--since",
        "2026-01-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    let expect: BTreeMap<String, usize> = w["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_string(),
                s["rows"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    // A run with something in every section but errors and quarantine.
    for key in [
        "drift-rolled-back",
        "drift-reported",
        "orphans",
        "missing",
        "leavers-enabled",
        "ambiguous-joins",
    ] {
        assert!(expect[key] > 0, "{key} is empty: {w}");
    }

    let html = out.join("reconcile.html");
    let dom = chromium::dump_dom(&html);
    assert!(dom.contains("data-ready=\"1\""), "the page's script ran");
    assert!(dom.contains("Chief &lt;Everything&gt; &amp; Co"), "escaped");
    for (key, n) in &expect {
        let sec = chromium::dom_section(&dom, &format!("sec-{key}"));
        assert_eq!(
            sec.matches("<tr data-row=").count(),
            *n,
            "{key} rows in the DOM"
        );
        // Each CSV has the same records as the page.
        let mut r = csv::Reader::from_path(out.join(format!("{key}.csv"))).expect("csv");
        assert_eq!(r.records().count(), *n, "{key}.csv");
    }
    let mut summary = csv::Reader::from_path(out.join("summary.csv")).expect("summary");
    let headers = summary.headers().expect("headers").clone();
    let col = headers
        .iter()
        .position(|h| h == "orphans")
        .expect("orphans column");
    let orphans: usize = summary
        .records()
        .map(|r| r.expect("record")[col].parse::<usize>().expect("count"))
        .sum();
    assert_eq!(orphans, expect["orphans"]);

    let png = s.e.path("report.png");
    chromium::screenshot(&html, &png, 1280, 900);
    let bytes = std::fs::read(&png).expect("png");
    assert_eq!(chromium::png_size(&bytes), Some((1280, 900)));
}
