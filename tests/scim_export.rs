//! Provisioning a SaaS application over SCIM 2.0, end to end: the bundled
//! example's `saas` and `saas-groups` targets against a real scim2-server
//! (behind a fault-injecting proxy), driven by the binary over the HR days.

mod common;
use common::scim::{FaultProxy, ScimServer};
use common::*;
use serde_json::Value;

const DAY1: &str = "2026-11-23T02:00:00Z";
const DAY2: &str = "2026-11-24T02:00:00Z";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

struct Setup {
    e: Env,
    server: ScimServer,
    proxy: FaultProxy,
}

fn setup() -> Setup {
    let server = ScimServer::start();
    let proxy = FaultProxy::start(server.port());
    Setup {
        e: example_with_scim(&proxy.url()),
        server,
        proxy,
    }
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

    fn user(&self, user_name: &str) -> Vec<Value> {
        self.server
            .users()
            .into_iter()
            .filter(|u| {
                u["userName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(user_name))
            })
            .collect()
    }

    fn day(&self, files: &str) {
        hr_day(&self.e, files);
    }
}

#[test]
fn people_and_groups_reach_the_application_and_follow_the_lifecycle() {
    let s = setup();
    // An account made by hand before idsync: joined, not duplicated.
    s.server.post(
        "/Users",
        &serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "sdubois",
            "displayName": "S. Dubois (by hand)",
        }),
    );
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);
    // Two throttled answers, then the service answers: retried within the run.
    s.proxy.fail_next(2, 429, Some(0));
    let r = s.ok_json(&["--as-of", DAY1, "export", "saas"]);
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["joined"], 1, "{r}");
    let created = r["created"].as_u64().unwrap();
    assert!(created > 25, "{r}");
    assert_eq!(s.server.users().len() as u64, created + 1);

    let sophie = s.user("sdubois");
    assert_eq!(sophie.len(), 1, "not duplicated");
    let sophie = &sophie[0];
    assert_eq!(sophie["displayName"], "Sophie Dubois");
    assert_eq!(sophie["active"], true);
    assert_eq!(sophie[ENTERPRISE]["department"], "Finance");
    assert_eq!(sophie["emails"][0]["value"], "sophie.dubois@example.com");
    // The manager reference is the manager's SCIM id.
    let boss_id = sophie[ENTERPRISE]["manager"]["value"]
        .as_str()
        .expect("manager");
    let boss = s.server.get(&format!("/Users/{boss_id}"));
    assert_eq!(boss["userName"], "ijohansson", "{boss}");
    assert!(
        s.user("kbecker").len() == 1,
        "an SAP-only person has an account"
    );

    // Groups, with members as user ids; a department group holds its people.
    let g = s.ok_json(&["--as-of", DAY1, "export", "saas-groups"]);
    assert_eq!(g["failed"], 0, "{g}");
    let groups = s.server.get("/Groups?count=100");
    let finance = groups["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["displayName"] == "dept-finance")
        .expect("dept-finance")
        .clone();
    let sophie_id = sophie["id"].as_str().unwrap();
    assert!(
        finance["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["value"] == sophie_id),
        "{finance}"
    );

    // The confirming import finds what was exported.
    let c = s.ok_json(&["import", "saas"]);
    assert_eq!(c["not_reimported"], 0, "{c}");
    assert_eq!(c["missing"], 0, "{c}");

    // Day 2: a mover's change is a PATCH of what changed; a leaver is
    // deactivated, not deleted; a joiner arrives.
    s.day("fixtures/hr/day2");
    s.ok_json(&["--as-of", DAY2, "run", "nightly"]);
    let before = s.proxy.requests();
    s.proxy.fail_next(1, 500, None);
    let r = s.ok_json(&["--as-of", DAY2, "export", "saas"]);
    assert_eq!(r["failed"], 0, "a 500 is retried: {r}");
    let sophie = &s.user("sdubois")[0];
    assert_eq!(sophie[ENTERPRISE]["department"], "Treasury");
    assert_eq!(sophie["title"], "Head of Treasury");
    let patches: Vec<Value> = s.proxy.seen()[before..]
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with(sophie_id))
        .map(|r| r.json())
        .collect();
    assert!(!patches.is_empty());
    let ops = patches[patches.len() - 1]["Operations"].to_string();
    assert!(
        ops.contains("Treasury") && !ops.contains("sophie.dubois@example.com"),
        "{ops}"
    );
    let jose = &s.user("jhernandez")[0];
    assert_eq!(jose["active"], false, "leaver disabled");
    assert_eq!(s.user("tzielinski").len(), 1, "joiner");
    let m = s.ok_json(&["--as-of", DAY2, "export", "saas-groups"]);
    assert_eq!(m["failed"], 0, "{m}");
    let finance = s
        .server
        .get(&format!("/Groups/{}", finance["id"].as_str().unwrap()));
    assert!(
        !finance["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["value"] == sophie_id),
        "the mover left her old department's group: {finance}"
    );

    // Day 3: José is back (day 1's file again): his account is re-enabled.
    s.day("fixtures/hr");
    s.ok_json(&["--as-of", DAY2, "run", "nightly"]);
    s.ok_json(&["--as-of", DAY2, "export", "saas"]);
    let jose = s.user("jhernandez");
    assert_eq!(jose.len(), 1, "re-enabled, not re-created");
    assert_eq!(jose[0]["active"], true);
}

#[test]
fn a_service_that_goes_down_mid_export_loses_nothing_and_doubles_nothing() {
    let s = setup();
    s.ok_json(&["--as-of", DAY1, "run", "nightly"]);
    let total = s.ok_json(&["export", "saas", "--dry-run"])[0]["created"]
        .as_u64()
        .unwrap();
    // The service starts failing after ten requests, for good.
    let out = std::thread::scope(|sc| {
        let watcher = sc.spawn(|| {
            let t0 = std::time::Instant::now();
            while s.proxy.requests() < 10 && t0.elapsed().as_secs() < 30 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            s.proxy.fail_next(u32::MAX, 503, Some(0));
        });
        let out = s.run(&["--as-of", DAY1, "--json", "export", "saas"]);
        watcher.join().expect("watcher");
        out
    });
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("stopped answering"),
        "{}",
        stderr(&out)
    );
    let done = s.server.users().len() as u64;
    assert!(done > 0 && done < total, "{done} of {total}");
    let status = s.ok_json(&["status"]);
    let saas = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "saas")
        .cloned()
        .expect("saas");
    assert_eq!(
        saas["pending_exports"].as_u64(),
        Some(total - done),
        "{saas}"
    );

    // Back: the rest is created, once.
    s.proxy.fail_next(0, 503, None);
    let r = s.ok_json(&["--as-of", DAY1, "export", "saas"]);
    assert_eq!(r["created"].as_u64(), Some(total - done), "{r}");
    let users = s.server.users();
    assert_eq!(users.len() as u64, total);
    let mut names: Vec<String> = users
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_lowercase())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len() as u64, total, "no account twice");
}
