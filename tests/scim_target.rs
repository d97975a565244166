//! The SCIM target against a real SCIM 2.0 server (scim2-server 0.8.3), with
//! a fault proxy in front of it where throttling and failures are needed.
//! Each test starts its own server, so they run in parallel.

mod common;

use common::scim::{FaultProxy, ScimServer};
use idsync::connector::scim::ScimTarget;
use idsync::connector::target::{
    Applied, Attrs, Change, ExportError, ExportOp, ScimConfig, ScimResource, Target,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Sets the token variable for one test and returns its name.
fn token_var(test: &str, token: &str) -> String {
    let var = format!("IDSYNC_TEST_SCIM_TOKEN_{}", test.to_ascii_uppercase());
    // SAFETY: every test sets a variable of its own name, before the target
    // that reads it exists, and no test reads another's; std's own
    // environment lock orders this write with other threads' std reads. The
    // C library is not asked for the environment meanwhile: the tests reach
    // the literal address 127.0.0.1, which is parsed, not looked up.
    unsafe { std::env::set_var(&var, token) };
    var
}

fn config(test: &str, url: &str, token: &str, resource: ScimResource) -> ScimConfig {
    ScimConfig {
        url: url.to_string(),
        token_env: token_var(test, token),
        resource,
        extensions: vec![ENT.to_string()],
        attributes: [
            "name.givenName",
            "name.familyName",
            "active",
            "title",
            r#"emails[type eq "work"].value"#,
            &format!("{ENT}:department"),
            &format!("{ENT}:employeeNumber"),
            &format!("{ENT}:manager"),
            "members",
        ]
        .map(String::from)
        .to_vec(),
        timeout_secs: 10,
        attempts: 3,
        backoff_ms: 10,
    }
}

fn connected(cfg: ScimConfig) -> ScimTarget {
    let mut t = ScimTarget::new(cfg);
    t.connect().expect("connect");
    t
}

fn users(test: &str, server: &ScimServer) -> ScimTarget {
    connected(config(
        test,
        &server.url(),
        server.token(),
        ScimResource::Users,
    ))
}

fn attrs(pairs: &[(&str, &[&str])]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn create(t: &mut ScimTarget, name: &str, a: Attrs) -> Applied {
    t.apply(&ExportOp::Create {
        name: name.into(),
        attrs: a,
    })
    .unwrap_or_else(|e| panic!("create {name}: {e}"))
}

fn update(id: &str, name: &str, rename: Option<&str>, changes: Vec<Change>) -> ExportOp {
    ExportOp::Update {
        id: id.into(),
        name: name.into(),
        rename: rename.map(String::from),
        changes,
    }
}

fn jane() -> Attrs {
    attrs(&[
        ("name.givenName", &["Jane"]),
        ("name.familyName", &["Doe"]),
        (
            r#"emails[type eq "work"].value"#,
            &["jane@example.org", "jd@example.org"],
        ),
        ("active", &["true"]),
        (&format!("{ENT}:department"), &["Finance"]),
        (&format!("{ENT}:employeeNumber"), &["00042"]),
    ])
}

#[test]
fn a_created_user_is_on_the_server_and_found_by_its_name() {
    let server = ScimServer::start();
    let mut t = users("create", &server);
    let made = create(&mut t, "jdoe", jane());
    assert_eq!(made.name, "jdoe");

    let held = server.get(&format!("/Users/{}", made.id));
    assert_eq!(held["userName"], "jdoe");
    assert_eq!(held["name"]["givenName"], "Jane");
    assert_eq!(held["active"], true);
    assert_eq!(held[ENT]["department"], "Finance");
    assert_eq!(held[ENT]["employeeNumber"], "00042");
    assert_eq!(
        held["emails"],
        json!([
            { "type": "work", "value": "jane@example.org" },
            { "type": "work", "value": "jd@example.org" }
        ])
    );
    let schemas = held["schemas"].as_array().expect("schemas");
    assert!(schemas.contains(&json!(ENT)), "{schemas:?}");

    let found = t.find("userName", "jdoe").expect("find").expect("found");
    assert_eq!(found.id, made.id);
    assert_eq!(found.name, "jdoe");
    assert_eq!(found.attrs, jane());
    // Other paths filter too, and a miss is None.
    let by_mail = t.find(r#"emails[type eq "work"].value"#, "jd@example.org");
    assert_eq!(by_mail.expect("find").map(|o| o.id), Some(made.id.clone()));
    let by_number = t.find(&format!("{ENT}:employeeNumber"), "00042");
    assert_eq!(by_number.expect("find").map(|o| o.id), Some(made.id));
    assert_eq!(t.find("userName", "nobody").expect("find"), None);
    // Quotes and backslashes in a value are escaped, not a broken filter.
    assert_eq!(t.find("userName", r#"o"brien\"#).expect("find"), None);
}

#[test]
fn a_taken_user_name_is_exists_and_an_ambiguous_find_is_rejected() {
    let server = ScimServer::start();
    let mut t = users("duplicate", &server);
    create(&mut t, "jdoe", jane());
    let again = t.apply(&ExportOp::Create {
        name: "JDoe".into(),
        attrs: Attrs::new(),
    });
    assert_eq!(again, Err(ExportError::Exists("JDoe".into())));

    create(&mut t, "other", jane());
    let e = t.find(&format!("{ENT}:department"), "Finance").unwrap_err();
    assert!(
        matches!(&e, ExportError::Rejected(m) if m.contains("2 resources")),
        "{e:?}"
    );

    // An attribute the server does not know is refused with its scimType.
    let e = t
        .apply(&ExportOp::Create {
            name: "x".into(),
            attrs: attrs(&[("nickNameX", &["x"])]),
        })
        .unwrap_err();
    assert!(
        matches!(&e, ExportError::Rejected(m) if m.contains("400 invalidSyntax")),
        "{e:?}"
    );
}

#[test]
fn an_update_patches_only_what_changed() {
    let server = ScimServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut t = connected(config(
        "patch",
        &proxy.url(),
        server.token(),
        ScimResource::Users,
    ));
    let made = create(&mut t, "jdoe", jane());

    let before = proxy.requests();
    let done = t
        .apply(&update(
            &made.id,
            "jdoe",
            None,
            vec![
                Change::Replace("title".into(), strings(&["Controller"])),
                Change::Replace(
                    r#"emails[type eq "work"].value"#.into(),
                    strings(&["j@new.org"]),
                ),
                Change::Replace("active".into(), strings(&["false"])),
            ],
        ))
        .expect("update");
    assert_eq!(
        done,
        Applied {
            id: made.id.clone(),
            name: "jdoe".into()
        }
    );

    let seen = proxy.seen();
    assert_eq!(seen.len(), before + 1, "one request per update");
    let patch = &seen[before];
    assert_eq!(patch.method, "PATCH");
    assert_eq!(
        patch.json()["Operations"],
        json!([
            { "op": "replace", "path": "title", "value": "Controller" },
            { "op": "remove", "path": "emails[type eq \"work\"]" },
            { "op": "add", "path": "emails", "value": [{ "type": "work", "value": "j@new.org" }] },
            { "op": "replace", "path": "active", "value": false }
        ])
    );

    let held = server.get(&format!("/Users/{}", made.id));
    assert_eq!(held["title"], "Controller");
    assert_eq!(held["active"], false);
    assert_eq!(
        held["emails"],
        json!([{ "type": "work", "value": "j@new.org" }])
    );
    // Untouched attributes stayed.
    assert_eq!(held["name"]["givenName"], "Jane");
    assert_eq!(held[ENT]["department"], "Finance");

    // Clearing removes; a hand-added home address survives a work change.
    assert_eq!(
        server.patch(
            &format!("/Users/{}", made.id),
            json!([{ "op": "add", "path": "emails", "value": [{ "type": "home", "value": "h@x.org" }] }])
        ),
        204
    );
    t.apply(&update(
        &made.id,
        "jdoe",
        None,
        vec![
            Change::Replace("title".into(), vec![]),
            Change::Replace(r#"emails[type eq "work"].value"#.into(), vec![]),
        ],
    ))
    .expect("clear");
    let held = server.get(&format!("/Users/{}", made.id));
    assert_eq!(held.get("title"), None);
    assert_eq!(
        held["emails"],
        json!([{ "type": "home", "value": "h@x.org" }])
    );

    // Nothing to change sends nothing.
    let before = proxy.requests();
    t.apply(&update(&made.id, "jdoe", None, vec![]))
        .expect("no-op");
    assert_eq!(proxy.requests(), before);
}

#[test]
fn a_rename_keeps_the_id() {
    let server = ScimServer::start();
    let mut t = users("rename", &server);
    let made = create(&mut t, "jdoe", jane());
    let done = t
        .apply(&update(&made.id, "jdoe", Some("jane.doe"), vec![]))
        .expect("rename");
    assert_eq!(
        done,
        Applied {
            id: made.id.clone(),
            name: "jane.doe".into()
        }
    );
    assert_eq!(
        server.get(&format!("/Users/{}", made.id))["userName"],
        "jane.doe"
    );
    assert_eq!(t.find("userName", "jdoe").expect("find"), None);
    let found = t
        .find("userName", "jane.doe")
        .expect("find")
        .expect("found");
    assert_eq!(found.id, made.id);

    // Renaming onto a taken name is the server's refusal, not a crash.
    create(&mut t, "taken", Attrs::new());
    let e = t
        .apply(&update(&made.id, "jane.doe", Some("taken"), vec![]))
        .unwrap_err();
    assert!(
        matches!(&e, ExportError::Rejected(m) if m.contains("409 uniqueness")),
        "{e:?}"
    );
}

#[test]
fn a_manager_is_referenced_by_id() {
    let server = ScimServer::start();
    let mut t = users("manager", &server);
    let boss = create(&mut t, "boss", Attrs::new());
    let other = create(&mut t, "other.boss", Attrs::new());
    let manager = format!("{ENT}:manager");
    let made = create(&mut t, "jdoe", attrs(&[(&manager, &[&boss.id])]));
    let held = server.get(&format!("/Users/{}", made.id));
    assert_eq!(held[ENT]["manager"], json!({ "value": boss.id }));
    let found = t.find(&manager, &boss.id).expect("find").expect("found");
    assert_eq!(found.id, made.id);
    assert_eq!(found.attrs[&manager], vec![boss.id.clone()]);

    t.apply(&update(
        &made.id,
        "jdoe",
        None,
        vec![Change::Replace(manager.clone(), vec![other.id.clone()])],
    ))
    .expect("new manager");
    assert_eq!(
        server.get(&format!("/Users/{}", made.id))[ENT]["manager"]["value"],
        json!(other.id)
    );
    t.apply(&update(
        &made.id,
        "jdoe",
        None,
        vec![Change::Replace(manager, vec![])],
    ))
    .expect("no manager");
    assert_eq!(
        server.get(&format!("/Users/{}", made.id))[ENT].get("manager"),
        None
    );
}

fn members(server: &ScimServer, id: &str) -> Vec<String> {
    let g = server.get(&format!("/Groups/{id}"));
    let mut ids: Vec<String> = g["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|v| v["value"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[test]
fn a_group_holds_members_that_come_and_go() {
    let server = ScimServer::start();
    let mut u = users("group_users", &server);
    let ids: Vec<String> = ["ann", "bob", "cat"]
        .iter()
        .map(|n| create(&mut u, n, Attrs::new()).id)
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();

    let mut g = connected(config(
        "groups",
        &server.url(),
        server.token(),
        ScimResource::Groups,
    ));
    let staff = g
        .apply(&ExportOp::Create {
            name: "Staff".into(),
            attrs: attrs(&[("members", &[&ids[0], &ids[1]])]),
        })
        .expect("create group");
    assert_eq!(staff.name, "Staff");
    assert_eq!(
        server.get(&format!("/Groups/{}", staff.id))["displayName"],
        "Staff"
    );
    let mut first_two = vec![ids[0].clone(), ids[1].clone()];
    first_two.sort();
    assert_eq!(members(&server, &staff.id), first_two);

    g.apply(&update(
        &staff.id,
        "Staff",
        Some("All staff"),
        vec![
            Change::Add("members".into(), vec![ids[2].clone()]),
            Change::Remove("members".into(), vec![ids[0].clone()]),
        ],
    ))
    .expect("members");
    let mut last_two = vec![ids[1].clone(), ids[2].clone()];
    last_two.sort();
    assert_eq!(members(&server, &staff.id), last_two);
    assert_eq!(
        server.get(&format!("/Groups/{}", staff.id))["displayName"],
        "All staff"
    );

    let found = g
        .find("displayName", "All staff")
        .expect("find")
        .expect("found");
    assert_eq!(found.id, staff.id);
    let mut read = found.attrs["members"].clone();
    read.sort();
    assert_eq!(read, last_two);

    g.apply(&update(
        &staff.id,
        "All staff",
        None,
        vec![Change::Replace("members".into(), sorted.clone())],
    ))
    .expect("replace members");
    assert_eq!(members(&server, &staff.id), sorted);
}

#[test]
fn deleting_removes_and_a_missing_object_is_not_found() {
    let server = ScimServer::start();
    let mut t = users("delete", &server);
    let made = create(&mut t, "jdoe", jane());
    let gone = ExportOp::Delete {
        id: made.id.clone(),
        name: "jdoe".into(),
    };
    assert_eq!(t.apply(&gone), Ok(made.clone()));
    assert_eq!(
        server
            .request("GET", &format!("/Users/{}", made.id), None)
            .0,
        404
    );
    let again = t.apply(&gone).unwrap_err();
    assert!(
        matches!(&again, ExportError::NotFound(m) if m.contains("jdoe")),
        "{again:?}"
    );
    let e = t
        .apply(&update(
            &made.id,
            "jdoe",
            None,
            vec![Change::Replace("title".into(), strings(&["x"]))],
        ))
        .unwrap_err();
    assert!(matches!(e, ExportError::NotFound(_)), "{e:?}");
}

#[test]
fn read_all_walks_every_page() {
    let server = ScimServer::start();
    let mut t = users("read_all", &server);
    const N: usize = 1200;
    for i in 0..N {
        let a = attrs(&[("title", &[&format!("t{i}")]), ("active", &["true"])]);
        create(&mut t, &format!("user{i:04}"), a);
    }
    let mut seen = Vec::new();
    t.read_all(&mut |o| seen.push(o)).expect("read_all");
    assert_eq!(seen.len(), N);
    // Pages that do not divide the total end on a short one.
    let proxy = FaultProxy::start(server.port());
    let cfg = config(
        "read_all",
        &proxy.url(),
        server.token(),
        ScimResource::Users,
    );
    let mut small = ScimTarget::new(cfg).with_page_size(333);
    small.connect().expect("connect");
    let before = proxy.requests();
    let mut count = 0;
    small.read_all(&mut |_| count += 1).expect("read_all");
    assert_eq!(count, N);
    let pages: Vec<String> = proxy.seen()[before..]
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(pages[3].contains("startIndex=1000&count=333"), "{pages:?}");
    seen.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, o) in seen.iter().enumerate() {
        assert_eq!(o.name, format!("user{i:04}"));
        assert_eq!(
            o.attrs,
            attrs(&[("title", &[&format!("t{i}")]), ("active", &["true"])])
        );
    }
    let mut ids: Vec<&str> = seen.iter().map(|o| o.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), N, "no resource twice");
    assert_eq!(server.users().len(), N);
}

#[test]
fn a_missing_token_variable_is_named() {
    let mut cfg = config(
        "missing",
        "http://127.0.0.1:9/v2",
        "unused",
        ScimResource::Users,
    );
    cfg.token_env = "IDSYNC_TEST_SCIM_TOKEN_NEVER_SET".into();
    let e = ScimTarget::new(cfg).connect().unwrap_err();
    assert!(e.is_transient());
    assert!(
        e.to_string().contains("IDSYNC_TEST_SCIM_TOKEN_NEVER_SET"),
        "{e}"
    );
}

#[test]
fn a_wrong_token_is_transient_and_not_shown() {
    let server = ScimServer::start();
    let wrong = "wrong-secret-value-1234";
    let cfg = config("wrong", &server.url(), wrong, ScimResource::Users);
    let e = ScimTarget::new(cfg).connect().unwrap_err();
    let msg = e.to_string();
    assert!(e.is_transient(), "{e:?}");
    assert!(msg.contains(&server.url()), "{msg}");
    assert!(msg.contains("IDSYNC_TEST_SCIM_TOKEN_WRONG"), "{msg}");
    assert!(msg.contains("401"), "{msg}");
    assert!(
        !msg.contains(wrong) && !msg.contains(server.token()),
        "{msg}"
    );
}

#[test]
fn throttling_is_retried_within_the_call() {
    let server = ScimServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut cfg = config(
        "throttle",
        &proxy.url(),
        server.token(),
        ScimResource::Users,
    );
    // A long backoff shows that the server's Retry-After is what is waited.
    cfg.backoff_ms = 20_000;
    let mut t = connected(cfg);
    let before = proxy.requests();
    proxy.fail_next(2, 429, Some(0));
    let started = Instant::now();
    let made = create(&mut t, "jdoe", jane());
    assert!(started.elapsed() < Duration::from_secs(5));
    let seen = &proxy.seen()[before..];
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen.iter().filter(|s| s.forwarded).count(), 1);
    assert!(
        seen.iter()
            .all(|s| s.method == "POST" && s.body == seen[0].body)
    );
    assert_eq!(
        server.get(&format!("/Users/{}", made.id))["userName"],
        "jdoe"
    );
}

#[test]
fn a_failing_server_is_transient_after_every_attempt() {
    let server = ScimServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut cfg = config("failing", &proxy.url(), server.token(), ScimResource::Users);
    cfg.attempts = 4;
    let mut t = connected(cfg);
    let before = proxy.requests();
    proxy.fail_next(100, 500, None);
    let e = t.find("userName", "jdoe").unwrap_err();
    assert_eq!(proxy.requests() - before, 4);
    let msg = e.to_string();
    assert!(e.is_transient(), "{e:?}");
    assert!(msg.contains("500") && msg.contains("fault proxy"), "{msg}");

    // A 503 that clears is retried like a 429, after the wait it asks for.
    proxy.fail_next(1, 503, Some(1));
    let started = Instant::now();
    assert_eq!(t.find("userName", "jdoe").expect("find"), None);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(server.users().is_empty());
}

#[test]
fn a_stopped_server_is_transient_and_a_restarted_one_is_empty() {
    let mut server = ScimServer::start();
    let mut t = users("stopped", &server);
    create(&mut t, "jdoe", jane());
    server.stop();
    let e = t
        .apply(&ExportOp::Create {
            name: "ann".into(),
            attrs: Attrs::new(),
        })
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("after 3 attempts"), "{e}");

    server.restart();
    assert!(server.users().is_empty(), "memory only");
    create(&mut t, "jdoe", jane());
    assert_eq!(server.users().len(), 1);
    let v: Value = server.users().remove(0);
    assert_eq!(v["userName"], "jdoe");
}
