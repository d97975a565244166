//! The SCIM connector's pure parts: paths to and from JSON, PATCH bodies,
//! filters, statuses and `Retry-After`. The HTTP side is tested against a
//! real server in `tests/scim_target.rs`.

use super::http::{Answer, Class, classify, describe, retry_after, segment};
use super::path::{Path, quote};
use super::*;
use std::time::Duration;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn cfg(resource: ScimResource) -> ScimConfig {
    ScimConfig {
        url: "http://127.0.0.1:9/v2/".into(),
        token_env: "IDSYNC_UNIT_SCIM_TOKEN".into(),
        resource,
        extensions: vec![ENT.into()],
        attributes: vec![],
        timeout_secs: 5,
        attempts: 3,
        backoff_ms: 10,
    }
}

fn parse(p: &str) -> Path {
    match Path::parse(p, &[ENT.to_string()]) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
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

#[test]
fn paths_parse_into_their_forms() {
    assert_eq!(
        parse("userName"),
        Path::Text {
            ext: None,
            attr: "userName".into(),
            sub: None
        }
    );
    assert_eq!(
        parse("name.givenName"),
        Path::Text {
            ext: None,
            attr: "name".into(),
            sub: Some("givenName".into())
        }
    );
    assert_eq!(
        parse("active"),
        Path::Bool {
            attr: "active".into()
        }
    );
    assert_eq!(parse("members"), Path::Members);
    assert_eq!(
        parse(r#"emails[type eq "work"].value"#),
        Path::Typed {
            attr: "emails".into(),
            kind: "work".into()
        }
    );
    assert_eq!(
        parse(&format!("{ENT}:department")),
        Path::Text {
            ext: Some(ENT.into()),
            attr: "department".into(),
            sub: None
        }
    );
    assert_eq!(
        parse(&format!("{ENT}:manager")),
        Path::Manager { ext: ENT.into() }
    );
    assert_eq!(
        parse(&format!("{CORE_USER}:userName")),
        parse("userName"),
        "the core URN prefix names a core attribute"
    );
    // An extension the agent does not list still splits at its last colon.
    assert_eq!(
        Path::parse("urn:example:ext:1.0:User:costCode", &[]),
        Ok(Path::Text {
            ext: Some("urn:example:ext:1.0:User".into()),
            attr: "costCode".into(),
            sub: None
        })
    );
}

#[test]
fn unsupported_paths_say_why() {
    for bad in [
        "",
        "emails[type eq \"work\"]",
        "emails[value eq \"x\"].value",
        "emails[type eq \"work\"].display",
        "emails[type eq \"work\".value",
        "1name",
        "name.given name",
        "urn:",
    ] {
        let e = Path::parse(bad, &[]).expect_err(bad);
        assert!(e.contains("unsupported SCIM attribute path"), "{bad}: {e}");
    }
    assert!(check_attribute("name.familyName", &[]).is_ok());
}

#[test]
fn a_create_body_maps_every_form_and_lists_the_extension() {
    let t = ScimTarget::new(cfg(ScimResource::Users));
    let a = attrs(&[
        ("name.givenName", &["Jane"]),
        ("name.familyName", &["Doe"]),
        ("active", &["TRUE"]),
        (r#"emails[type eq "work"].value"#, &["j@x.org", "jd@x.org"]),
        (r#"phoneNumbers[type eq "work"].value"#, &["+1 555"]),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            &["IT"],
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            &["m-1"],
        ),
        ("title", &[]),
    ]);
    let body: Value = serde_json::from_slice(&t.create_body("jdoe", &a).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "schemas": [CORE_USER, ENT],
            "userName": "jdoe",
            "name": { "givenName": "Jane", "familyName": "Doe" },
            "active": true,
            "emails": [
                { "type": "work", "value": "j@x.org" },
                { "type": "work", "value": "jd@x.org" }
            ],
            "phoneNumbers": [{ "type": "work", "value": "+1 555" }],
            ENT: { "department": "IT", "manager": { "value": "m-1" } }
        })
    );
}

#[test]
fn a_create_body_keeps_a_given_name_and_only_the_core_schema_without_extensions() {
    let t = ScimTarget::new(cfg(ScimResource::Users));
    let a = attrs(&[("userName", &["given"])]);
    let body: Value = serde_json::from_slice(&t.create_body("jdoe", &a).unwrap()).unwrap();
    assert_eq!(body, json!({ "schemas": [CORE_USER], "userName": "given" }));

    let g = ScimTarget::new(cfg(ScimResource::Groups));
    let a = attrs(&[("members", &["u1", "u2"])]);
    let body: Value = serde_json::from_slice(&g.create_body("staff", &a).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "schemas": [CORE_GROUP],
            "displayName": "staff",
            "members": [{ "value": "u1" }, { "value": "u2" }]
        })
    );
}

#[test]
fn a_create_body_refuses_bad_values() {
    let t = ScimTarget::new(cfg(ScimResource::Users));
    let e = t
        .create_body("j", &attrs(&[("active", &["yes"])]))
        .unwrap_err();
    assert!(
        matches!(&e, ExportError::Rejected(m) if m.contains("\"yes\"")),
        "{e:?}"
    );
    let e = t
        .create_body("j", &attrs(&[("title", &["a", "b"])]))
        .unwrap_err();
    assert!(
        matches!(&e, ExportError::Rejected(m) if m.contains("single-valued")),
        "{e:?}"
    );
}

#[test]
fn reading_a_resource_gives_back_what_was_written() {
    let resource = json!({
        "id": "u1",
        "userName": "jdoe",
        "name": { "givenName": "Jane", "familyName": "Doe" },
        "active": false,
        "emails": [
            { "type": "home", "value": "h@x.org" },
            { "type": "work", "value": "j@x.org" },
            { "type": "Work", "value": "jd@x.org" }
        ],
        ENT: { "department": "IT", "employeeNumber": "42", "manager": { "value": "m-1" } },
        "members": [{ "value": "a" }, { "value": "b" }]
    });
    let r = resource.as_object().unwrap();
    let read = |p: &str| parse(p).read(r);
    assert_eq!(read("userName"), ["jdoe"]);
    assert_eq!(read("name.givenName"), ["Jane"]);
    assert_eq!(read("name.formatted"), Vec::<String>::new());
    assert_eq!(read("active"), ["false"]);
    assert_eq!(
        read(r#"emails[type eq "work"].value"#),
        ["j@x.org", "jd@x.org"]
    );
    assert_eq!(
        read(r#"phoneNumbers[type eq "work"].value"#),
        Vec::<String>::new()
    );
    assert_eq!(read(&format!("{ENT}:department")), ["IT"]);
    assert_eq!(read(&format!("{ENT}:employeeNumber")), ["42"]);
    assert_eq!(read(&format!("{ENT}:manager")), ["m-1"]);
    assert_eq!(read("members"), ["a", "b"]);
    // Attribute names are case-insensitive in SCIM.
    assert_eq!(read("USERNAME"), ["jdoe"]);
}

#[test]
fn a_remote_object_holds_only_the_configured_attributes() {
    let mut c = cfg(ScimResource::Users);
    c.attributes = strings(&["name.givenName", "title"]);
    let mut t = ScimTarget::new(c);
    t.read_paths = t
        .cfg
        .attributes
        .iter()
        .map(|a| (a.clone(), parse(a)))
        .collect();
    let r = t
        .remote(&json!({ "id": "u1", "userName": "jdoe", "name": { "givenName": "J" }, "displayName": "x" }))
        .unwrap();
    assert_eq!(
        r,
        RemoteObject {
            id: "u1".into(),
            name: "jdoe".into(),
            attrs: attrs(&[("name.givenName", &["J"])])
        }
    );
    let e = t.remote(&json!({ "userName": "jdoe" })).unwrap_err();
    assert!(
        matches!(&e, ExportError::Rejected(m) if m.contains("without an id")),
        "{e:?}"
    );
    assert!(t.remote(&json!(["not", "an", "object"])).is_err());
}

#[test]
fn a_patch_carries_only_the_changes() {
    let t = ScimTarget::new(cfg(ScimResource::Users));
    let ops = t
        .patch_ops(
            Some("jane.doe"),
            &[
                Change::Replace("name.givenName".into(), strings(&["Jane"])),
                Change::Replace("title".into(), vec![]),
                Change::Replace("active".into(), strings(&["false"])),
                Change::Replace(
                    r#"emails[type eq "work"].value"#.into(),
                    strings(&["a@x", "b@x"]),
                ),
                Change::Replace(r#"phoneNumbers[type eq "work"].value"#.into(), vec![]),
                Change::Replace(format!("{ENT}:manager"), strings(&["m-2"])),
                Change::Replace(format!("{ENT}:department"), strings(&["Sales"])),
            ],
        )
        .unwrap();
    assert_eq!(
        Value::Array(ops),
        json!([
            { "op": "replace", "path": "userName", "value": "jane.doe" },
            { "op": "replace", "path": "name.givenName", "value": "Jane" },
            { "op": "remove", "path": "title" },
            { "op": "replace", "path": "active", "value": false },
            { "op": "remove", "path": "emails[type eq \"work\"]" },
            { "op": "add", "path": "emails", "value": [
                { "type": "work", "value": "a@x" }, { "type": "work", "value": "b@x" }
            ] },
            { "op": "remove", "path": "phoneNumbers[type eq \"work\"]" },
            { "op": "replace", "path": format!("{ENT}:manager"), "value": { "value": "m-2" } },
            { "op": "replace", "path": format!("{ENT}:department"), "value": "Sales" }
        ])
    );
    assert!(t.patch_ops(None, &[]).unwrap().is_empty());
}

#[test]
fn group_members_are_added_and_removed_by_id() {
    let t = ScimTarget::new(cfg(ScimResource::Groups));
    let ops = t
        .patch_ops(
            Some("Staff"),
            &[
                Change::Add("members".into(), strings(&["u1", "u2"])),
                Change::Remove("members".into(), strings(&["u3", "we\"ird"])),
                Change::Add("members".into(), vec![]),
            ],
        )
        .unwrap();
    assert_eq!(
        Value::Array(ops),
        json!([
            { "op": "replace", "path": "displayName", "value": "Staff" },
            { "op": "add", "path": "members", "value": [{ "value": "u1" }, { "value": "u2" }] },
            { "op": "remove", "path": "members[value eq \"u3\"]" },
            { "op": "remove", "path": "members[value eq \"we\\\"ird\"]" }
        ])
    );
    let replace = t
        .patch_ops(None, &[Change::Replace("members".into(), vec![])])
        .unwrap();
    assert_eq!(
        Value::Array(replace),
        json!([{ "op": "remove", "path": "members" }])
    );
    let e = t
        .patch_ops(None, &[Change::Add("displayName".into(), strings(&["x"]))])
        .unwrap_err();
    assert!(
        matches!(&e, ExportError::Rejected(m) if m.contains("single-valued")),
        "{e:?}"
    );
}

#[test]
fn filters_quote_and_escape_values() {
    assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    assert_eq!(quote("tab\there"), r#""tab\there""#);
    assert_eq!(
        parse("userName").filter("jdoe").unwrap(),
        r#"userName eq "jdoe""#
    );
    assert_eq!(
        parse("userName").filter(r#"o"brien\x"#).unwrap(),
        r#"userName eq "o\"brien\\x""#
    );
    assert_eq!(
        parse(r#"emails[type eq "work"].value"#)
            .filter("j@x")
            .unwrap(),
        r#"emails[type eq "work" and value eq "j@x"]"#
    );
    assert_eq!(parse("active").filter("True").unwrap(), "active eq true");
    assert!(parse("active").filter("maybe").is_err());
    assert_eq!(
        parse(&format!("{ENT}:employeeNumber"))
            .filter("42")
            .unwrap(),
        format!("{ENT}:employeeNumber eq \"42\"")
    );
    assert_eq!(
        parse(&format!("{ENT}:manager")).filter("m1").unwrap(),
        format!("{ENT}:manager.value eq \"m1\"")
    );
    assert_eq!(
        parse("members").filter("u1").unwrap(),
        r#"members[value eq "u1"]"#
    );
}

#[test]
fn statuses_are_classified() {
    assert_eq!(classify(200), Class::Success);
    assert_eq!(classify(201), Class::Success);
    assert_eq!(classify(204), Class::Success);
    assert_eq!(classify(429), Class::Retry);
    assert_eq!(classify(500), Class::Retry);
    assert_eq!(classify(503), Class::Retry);
    assert_eq!(classify(404), Class::NotFound);
    assert_eq!(classify(409), Class::Conflict);
    assert_eq!(classify(401), Class::Unauthorized);
    for s in [400, 403, 412, 413, 302] {
        assert_eq!(classify(s), Class::Refused, "{s}");
    }
}

#[test]
fn retry_after_is_seconds_and_capped() {
    assert_eq!(retry_after("0"), Some(Duration::ZERO));
    assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
    assert_eq!(retry_after("3600"), Some(Duration::from_secs(60)));
    assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    assert_eq!(retry_after("-1"), None);
    assert_eq!(retry_after(""), None);
}

#[test]
fn error_bodies_are_described() {
    let scim = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"taken"}"#;
    assert_eq!(describe(409, scim), "409 uniqueness: taken");
    assert_eq!(describe(404, br#"{"detail":"gone"}"#), "404: gone");
    assert_eq!(
        describe(502, b"<html>Bad Gateway</html>"),
        "502: <html>Bad Gateway</html>"
    );
    assert_eq!(describe(500, b""), "500");
}

#[test]
fn bad_create_answers_are_rejected_not_panics() {
    let answer = |body: &[u8]| Answer {
        status: 201,
        body: body.to_vec(),
    };
    let ok = created(
        "u",
        "userName",
        "jdoe",
        &answer(br#"{"id":"x1","userName":"JDoe"}"#),
    );
    assert_eq!(
        ok,
        Ok(Applied {
            id: "x1".into(),
            name: "JDoe".into()
        })
    );
    for body in [
        &b"not json"[..],
        b"",
        br#"{"userName":"jdoe"}"#,
        br#"{"id":7}"#,
        b"[]",
    ] {
        let e = created("u", "userName", "jdoe", &answer(body)).unwrap_err();
        assert!(
            matches!(&e, ExportError::Rejected(m) if m.contains("may have been created")),
            "{e:?}"
        );
    }
}

#[test]
fn ids_are_encoded_as_one_path_segment() {
    assert_eq!(segment("2819c223-7f76"), "2819c223-7f76");
    assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
}
