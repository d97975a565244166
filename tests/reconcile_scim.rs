//! Reconciliation against a real SCIM 2.0 service (scim2-server): the
//! bundled example's `saas` target, changed by hand over SCIM (PATCH, POST,
//! DELETE) between idsync's runs, under stricter policies than the
//! example's: orphans deleted, missing accounts only reported.

mod common;
use common::scim::ScimServer;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const DAY1: &str = "2026-11-23T02:00:00Z";

struct Setup {
    e: Env,
    server: ScimServer,
}

fn setup() -> Setup {
    let server = ScimServer::start();
    let e = example_with_scim(&server.url());
    let p = e.path("rules/targets/saas.toml");
    let text = std::fs::read_to_string(&p).expect("read");
    let text = text
        .replace(
            "\ntitle = \"title\"",
            "\ntitle = { expr = \"title\", drift = \"report\" }",
        )
        .replace(
            "[flows.export]",
            "[reconcile]\norphans = \"delete\"\nmissing = \"report\"\n\n[flows.export]",
        );
    assert!(
        text.contains("drift = \"report\""),
        "the test's rule edit applies"
    );
    std::fs::write(&p, text).expect("write");
    Setup { e, server }
}

impl Setup {
    fn run(&self, args: &[&str]) -> std::process::Output {
        self.e
            .idsync_env(args, &[("IDSYNC_SCIM_TOKEN", self.server.token())])
    }

    fn ok_json(&self, args: &[&str]) -> Value {
        self.e
            .ok_json_env(args, &[("IDSYNC_SCIM_TOKEN", self.server.token())])
    }

    fn user(&self, user_name: &str) -> Option<Value> {
        self.server.users().into_iter().find(|u| {
            u["userName"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(user_name))
        })
    }

    fn report(&self) -> BTreeMap<String, Vec<Value>> {
        let out = self.e.path("report");
        self.ok_json(&["report", "reconcile", "--out", out.to_str().unwrap()]);
        report_sections(&out)
    }
}

fn stranger(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "displayName": "Made by hand",
    })
}

#[test]
fn scim_changes_by_hand_are_rolled_back_or_reported_and_orphans_deleted_within_the_guard() {
    let s = setup();
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);
    let r = s.ok_json(&["--as-of", DAY1, "export", "saas"]);
    assert_eq!(r["failed"], 0, "{r}");
    let c = s.ok_json(&["--as-of", DAY1, "import", "saas"]);
    assert_eq!(c["drift_found"], 0, "no drift out of nothing: {c}");
    assert_eq!(c["orphans"], 0, "{c}");

    let sophie = s.user("sdubois").expect("sdubois");
    let id = sophie["id"].as_str().unwrap().to_string();
    let display = sophie["displayName"].as_str().unwrap().to_string();
    // By hand: displayName (authoritative) and title (report) changed.
    let status = s.server.patch(
        &format!("/Users/{id}"),
        json!([
            {"op": "replace", "path": "displayName", "value": "Sophie the Great"},
            {"op": "replace", "path": "title", "value": "Queen of Finance"},
        ]),
    );
    assert!(status < 300, "PATCH {status}");
    // Two strangers, and a colleague deleted.
    s.server.post("/Users", &stranger("ghost1"));
    s.server.post("/Users", &stranger("ghost2"));
    let amara = s.user("aokafor").expect("aokafor");
    let status = s
        .server
        .delete(&format!("/Users/{}", amara["id"].as_str().unwrap()));
    assert!(status < 300, "DELETE {status}");

    let c = s.ok_json(&["--as-of", DAY1, "import", "saas"]);
    assert_eq!(c["drift_found"], 2, "{c}");
    assert_eq!(c["rollbacks_queued"], 1, "{c}");
    assert_eq!(c["orphans_new"], 2, "{c}");
    assert_eq!(c["missing"], 1, "{c}");

    // Two orphan deletes pass the example's guard; a guard of one stops
    // the export before it touches the service.
    let meta = s.e.path("rules/metaverse.toml");
    let original = std::fs::read_to_string(&meta).expect("read");
    std::fs::write(
        &meta,
        format!("{original}\n[metaverse.deletion_guard]\nmax_deletes = 1\n"),
    )
    .expect("write");
    let out = s.run(&["--as-of", DAY1, "export", "saas"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("delete 2"), "{}", stderr(&out));
    assert!(s.user("ghost1").is_some(), "nothing touched");
    let r = s.ok_json(&["--as-of", DAY1, "--allow-deletes", "2", "export", "saas"]);
    std::fs::write(&meta, original).expect("write");
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["rolled_back"], 1, "{r}");
    assert_eq!(r["orphans_deleted"], 2, "{r}");
    assert_eq!(r["created"], 0, "missing = \"report\": {r}");

    let sophie = s.user("sdubois").expect("sdubois");
    assert_eq!(sophie["displayName"], display.as_str(), "rolled back");
    assert_eq!(sophie["title"], "Queen of Finance", "reported, kept");
    assert!(s.user("ghost1").is_none() && s.user("ghost2").is_none());
    assert!(s.user("aokafor").is_none(), "only reported");

    let report = s.report();
    let missing: Vec<&Value> = report["missing"]
        .iter()
        .filter(|r| cell(r, "target") == "saas")
        .collect();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(cell(missing[0], "account"), "aokafor");
    assert!(
        cell(missing[0], "reason").contains("outside idsync"),
        "{missing:?}"
    );
    let orphans: Vec<&Value> = report["orphans"]
        .iter()
        .filter(|r| cell(r, "target") == "saas")
        .collect();
    assert_eq!(orphans.len(), 2, "{orphans:?}");
    assert!(
        orphans.iter().all(|o| cell(o, "state") == "deleted"),
        "{orphans:?}"
    );
    let reported: Vec<&Value> = report["drift-reported"]
        .iter()
        .filter(|r| cell(r, "target") == "saas")
        .collect();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(cell(reported[0], "attribute"), "title");
    assert_eq!(cell(reported[0], "found"), "Queen of Finance");

    // The policy changes to re-creating: the next confirming import queues
    // the account, the export creates it.
    let p = s.e.path("rules/targets/saas.toml");
    let text = std::fs::read_to_string(&p).expect("read");
    std::fs::write(
        &p,
        text.replace("missing = \"report\"", "missing = \"recreate\""),
    )
    .expect("write");
    s.ok_json(&["--as-of", DAY1, "import", "saas"]);
    let r = s.ok_json(&["--as-of", DAY1, "export", "saas"]);
    assert_eq!(r["created"], 1, "{r}");
    assert!(s.user("aokafor").is_some());
}

#[test]
fn a_409_on_create_is_an_export_error_in_the_report_until_match_joins_the_account() {
    let s = setup();
    // Without `match`, idsync does not look before creating.
    let p = s.e.path("rules/targets/saas.toml");
    let text = std::fs::read_to_string(&p).expect("read");
    std::fs::write(&p, text.replace("match = \"userName\"\n", "")).expect("write");
    let hand = s.server.post("/Users", &stranger("sdubois"));
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);
    let out = s.run(&["--json", "--as-of", DAY1, "export", "saas"]);
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["failed"], 1, "{r}");
    assert!(
        r["created"].as_u64().unwrap() > 20,
        "the others are created: {r}"
    );
    let e = r["errors"][0].as_str().unwrap_or_default();
    assert!(e.contains("already exists") && e.contains("match"), "{e}");
    assert_eq!(
        s.server
            .users()
            .iter()
            .filter(|u| u["userName"] == "sdubois")
            .count(),
        1,
        "no duplicate"
    );

    let report = s.report();
    let errors: Vec<&Value> = report["export-errors"]
        .iter()
        .filter(|r| cell(r, "target") == "saas")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(cell(errors[0], "account"), "sdubois");
    assert_eq!(cell(errors[0], "display name"), "Sophie Dubois");
    assert!(
        cell(errors[0], "error").contains("already exists"),
        "{errors:?}"
    );

    // With match back, the next export joins the account made by hand.
    std::fs::write(&p, text).expect("write");
    s.ok_json(&["--as-of", DAY1, "sync", "--delta"]);
    let r = s.ok_json(&["--as-of", DAY1, "export", "saas"]);
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["joined"], 1, "{r}");
    assert_eq!(s.user("sdubois").expect("sdubois")["id"], hand["id"]);
    assert!(
        s.report()["export-errors"]
            .iter()
            .all(|r| cell(r, "target") != "saas")
    );
}

/// A file for the HR system with each person's id in the SaaS application:
/// a value the application made, flowing back through idsync.
const SAAS_IDS: &str = r#"
[target]
name = "saas-ids"
kind = "csv"
object_type = "person"
path = "../../out/saas_ids.csv"
key = "Worker_ID"

[provision]
scope = 'IsPresent(employeeId)'
name = "employeeId"

[flows.export]
Login = "accountName"
SaaS_Id = { account = "saas" }
SaaS_Name = { account = "saas", value = "name" }
"#;

fn rows(path: &std::path::Path) -> BTreeMap<String, (String, String)> {
    let mut r = csv::Reader::from_path(path).expect("csv");
    let h = r.headers().expect("header").clone();
    let col = |n: &str| h.iter().position(|c| c == n).expect(n);
    let (id, name) = (col("SaaS_Id"), col("SaaS_Name"));
    r.records()
        .map(|x| {
            let x = x.expect("row");
            (x[0].to_string(), (x[id].to_string(), x[name].to_string()))
        })
        .collect()
}

#[test]
fn ids_the_application_made_flow_back_to_a_file_for_hr() {
    let s = setup();
    s.e.write("rules/targets/saas_ids.toml", SAAS_IDS);
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);
    // The application has no accounts yet: the rows are written without
    // the id and wait for it.
    let r = s.ok_json(&["--as-of", DAY1, "export", "saas-ids"]);
    assert!(r["created"].as_u64().unwrap() > 20, "{r}");
    let file = s.e.path("out/saas_ids.csv");
    let before = rows(&file);
    assert!(before.values().all(|(id, _)| id.is_empty()), "{before:?}");

    s.ok_json(&["--as-of", DAY1, "export", "saas"]);
    let r = s.ok_json(&["--as-of", DAY1, "export", "saas-ids"]);
    assert!(r["updated"].as_u64().unwrap() > 20, "{r}");
    let after = rows(&file);
    let sophie = s.user("sdubois").expect("sdubois");
    assert_eq!(
        after["W100005"],
        (
            sophie["id"].as_str().unwrap().to_string(),
            "sdubois".to_string()
        ),
        "the id the service made"
    );
    // Legal is outside the application's scope: no account, no id.
    assert!(after.values().any(|(id, _)| id.is_empty()));
}
