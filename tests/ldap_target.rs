//! The LDAP target against a real slapd: each test starts its own server
//! (see `common::slapd`) and checks what the directory holds afterwards.

mod common;

use common::slapd::Slapd;
use idsync::connector::ldap::LdapTarget;
use idsync::connector::target::{
    Applied, Attrs, Change, ExportError, ExportOp, LdapConfig, RefBy, RemoteObject, Target,
};

const PEOPLE: &str = "ou=people,dc=example,dc=com";
const DISABLED: &str = "ou=disabled,dc=example,dc=com";

/// Sets the bind password variable of one test.
fn set_password(var: &str, value: &str) {
    // SAFETY: every test uses a variable named after itself, so no other
    // thread reads or writes this one; std serialises its own environment
    // accesses, and these tests run no C code that reads the environment
    // (the server URLs are IP literals, so nothing resolves names).
    unsafe { std::env::set_var(var, value) }
}

fn config(slapd: &Slapd, password_env: &str) -> LdapConfig {
    LdapConfig {
        url: slapd.url(),
        bind_dn: slapd.admin_dn().to_string(),
        password_env: password_env.to_string(),
        base: slapd.base().to_string(),
        filter: "(objectClass=inetOrgPerson)".to_string(),
        object_classes: vec!["inetOrgPerson".to_string()],
        id_attr: "entryUUID".to_string(),
        // Lowercase on purpose: the server answers `givenName`.
        attributes: ["uid", "cn", "sn", "givenname", "mail", "description"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        timeout_secs: 5,
    }
}

/// A connected target whose password lives in `IDSYNC_TEST_LDAP_PW_<test>`.
fn connected(slapd: &Slapd, test: &str) -> LdapTarget {
    let var = format!("IDSYNC_TEST_LDAP_PW_{test}");
    set_password(&var, slapd.password());
    let mut t = LdapTarget::new(config(slapd, &var));
    t.connect().expect("connect");
    t
}

fn dn(uid: &str, ou: &str) -> String {
    format!("uid={uid},{ou}")
}

fn attrs(pairs: &[(&str, &[&str])]) -> Attrs {
    pairs
        .iter()
        .map(|(a, v)| (a.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

fn person(uid: &str, sn: &str) -> ExportOp {
    ExportOp::Create {
        name: dn(uid, PEOPLE),
        attrs: attrs(&[
            ("uid", &[uid]),
            ("cn", &[&format!("{uid} {sn}")]),
            ("sn", &[sn]),
        ]),
    }
}

fn update(id: &str, name: &str, rename: Option<&str>, changes: Vec<Change>) -> ExportOp {
    ExportOp::Update {
        id: id.to_string(),
        name: name.to_string(),
        rename: rename.map(str::to_string),
        changes,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// One attribute of one entry as the server holds it (sorted), empty when
/// the entry or attribute is absent.
fn values(slapd: &Slapd, dn: &str, attr: &str) -> Vec<String> {
    slapd
        .search(slapd.base(), &format!("(entryDN={dn})"), &[attr])
        .into_iter()
        .flat_map(|(_, a)| a.into_iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)))
        .flat_map(|(_, v)| v)
        .collect()
}

fn uuid(slapd: &Slapd, dn: &str) -> String {
    let v = values(slapd, dn, "entryUUID");
    assert_eq!(v.len(), 1, "{dn} has entryUUID {v:?}");
    v[0].clone()
}

fn exists(slapd: &Slapd, dn: &str) -> bool {
    !slapd
        .search(slapd.base(), &format!("(entryDN={dn})"), &["1.1"])
        .is_empty()
}

#[test]
fn creates_with_object_classes_then_finds_by_uid() {
    let slapd = Slapd::start();
    let mut t = connected(&slapd, "creates_then_finds");
    assert_eq!(t.kind(), "ldap");
    assert_eq!(t.reference_by(), RefBy::Name);

    let jdoe = dn("jdoe", PEOPLE);
    let applied = t
        .apply(&ExportOp::Create {
            name: jdoe.clone(),
            attrs: attrs(&[
                ("uid", &["jdoe"]),
                ("cn", &["John Doe"]),
                ("sn", &["Doe"]),
                ("givenName", &["John"]),
                ("mail", &["john@example.com", "jdoe@example.com"]),
                ("description", &[]),
            ]),
        })
        .expect("create");
    assert_eq!(
        applied,
        Applied {
            id: uuid(&slapd, &jdoe),
            name: jdoe.clone()
        }
    );
    assert_eq!(
        values(&slapd, &jdoe, "objectClass"),
        strings(&["inetOrgPerson"])
    );
    assert_eq!(
        values(&slapd, &jdoe, "mail"),
        strings(&["jdoe@example.com", "john@example.com"])
    );

    let found = t.find("uid", "jdoe").expect("find").expect("one entry");
    assert_eq!(found.id, applied.id);
    assert_eq!(found.name, jdoe);
    assert_eq!(found.attrs["givenname"], strings(&["John"]));
    assert_eq!(found.attrs["uid"], strings(&["jdoe"]));
    assert_eq!(found.attrs["mail"].len(), 2);
    assert!(!found.attrs.contains_key("objectClass"));
    assert!(!found.attrs.contains_key("description"));

    assert_eq!(t.find("uid", "nobody").expect("find"), None);
    // Escaped, the asterisk matches only itself, not every entry.
    assert_eq!(t.find("uid", "*").expect("find"), None);

    t.apply(&person("jane", "Doe")).expect("create jane");
    match t.find("sn", "Doe") {
        Err(ExportError::Rejected(m)) => assert!(m.contains("matches 2 entries"), "{m}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    // The OUs are not inetOrgPersons: the agent's filter applies to finds.
    assert_eq!(t.find("ou", "people").expect("find"), None);
}

#[test]
fn create_of_a_taken_name_is_exists_and_a_schema_error_is_rejected() {
    let slapd = Slapd::start();
    let mut t = connected(&slapd, "create_exists");
    t.apply(&person("jdoe", "Doe")).expect("create");
    assert_eq!(
        t.apply(&person("jdoe", "Doe")),
        Err(ExportError::Exists(dn("jdoe", PEOPLE)))
    );

    let no_sn = ExportOp::Create {
        name: dn("nosn", PEOPLE),
        attrs: attrs(&[("uid", &["nosn"]), ("cn", &["No Surname"])]),
    };
    match t.apply(&no_sn) {
        Err(ExportError::Rejected(m)) => {
            assert!(m.contains("objectClassViolation (65)"), "{m}");
            assert!(m.contains("'sn'"), "the server's reason is kept: {m}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let unknown = ExportOp::Create {
        name: dn("odd", PEOPLE),
        attrs: attrs(&[
            ("uid", &["odd"]),
            ("cn", &["Odd"]),
            ("sn", &["Odd"]),
            ("shoeSize", &["44"]),
        ]),
    };
    assert!(matches!(t.apply(&unknown), Err(ExportError::Rejected(_))));
    assert_eq!(slapd.count("(objectClass=inetOrgPerson)"), 1);
}

#[test]
fn updates_replace_add_remove_and_clear_and_can_be_repeated() {
    let slapd = Slapd::start();
    let mut t = connected(&slapd, "updates");
    let jdoe = dn("jdoe", PEOPLE);
    let id = t
        .apply(&ExportOp::Create {
            name: jdoe.clone(),
            attrs: attrs(&[
                ("uid", &["jdoe"]),
                ("cn", &["John Doe"]),
                ("sn", &["Doe"]),
                ("mail", &["old@example.com"]),
                ("telephoneNumber", &["+1 555 0100"]),
            ]),
        })
        .expect("create")
        .id;

    let first = update(
        &id,
        &jdoe,
        None,
        vec![
            Change::Replace("mail".into(), strings(&["new@example.com"])),
            Change::Add("description".into(), strings(&["a", "b", "c"])),
            Change::Replace("telephoneNumber".into(), vec![]),
        ],
    );
    assert_eq!(
        t.apply(&first),
        Ok(Applied {
            id: id.clone(),
            name: jdoe.clone()
        })
    );
    assert_eq!(values(&slapd, &jdoe, "mail"), strings(&["new@example.com"]));
    assert_eq!(
        values(&slapd, &jdoe, "description"),
        strings(&["a", "b", "c"])
    );
    assert!(values(&slapd, &jdoe, "telephoneNumber").is_empty());

    let second = update(
        &id,
        &jdoe,
        None,
        vec![
            Change::Remove("description".into(), strings(&["b"])),
            Change::Add("description".into(), strings(&["d"])),
        ],
    );
    t.apply(&second).expect("remove and add");
    assert_eq!(
        values(&slapd, &jdoe, "description"),
        strings(&["a", "c", "d"])
    );

    // An export run twice (a crash before it was recorded) changes nothing
    // and fails nothing: values already added, already removed, a clear of
    // an absent attribute.
    t.apply(&first).expect("first again");
    assert_eq!(
        values(&slapd, &jdoe, "description"),
        strings(&["a", "b", "c", "d"]),
        "b added back, a and c already there, the clear of a cleared attribute"
    );
    t.apply(&second).expect("second again");
    t.apply(&second)
        .expect("second a third time: b already gone, d already there");
    assert_eq!(
        values(&slapd, &jdoe, "description"),
        strings(&["a", "c", "d"])
    );
    assert_eq!(values(&slapd, &jdoe, "mail"), strings(&["new@example.com"]));

    // Part already there, part new: the new part is still added.
    t.apply(&update(
        &id,
        &jdoe,
        None,
        vec![Change::Add("description".into(), strings(&["a", "e"]))],
    ))
    .expect("half-done add");
    assert_eq!(
        values(&slapd, &jdoe, "description"),
        strings(&["a", "c", "d", "e"])
    );

    // A value that breaks the schema is the server's refusal, with its text.
    let bad = update(&id, &jdoe, None, vec![Change::Replace("sn".into(), vec![])]);
    match t.apply(&bad) {
        Err(ExportError::Rejected(m)) => assert!(m.contains("objectClassViolation"), "{m}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn renames_within_and_across_ous_keep_the_entry() {
    let slapd = Slapd::start();
    let mut t = connected(&slapd, "renames");
    let id = t.apply(&person("mover", "Move")).expect("create").id;
    let old = dn("mover", PEOPLE);

    // Within the OU, and a rename alone is a whole update.
    let renamed = dn("mover2", PEOPLE);
    assert_eq!(
        t.apply(&update(&id, &old, Some(&renamed), vec![])),
        Ok(Applied {
            id: id.clone(),
            name: renamed.clone()
        })
    );
    assert!(!exists(&slapd, &old));
    assert_eq!(uuid(&slapd, &renamed), id);
    assert_eq!(
        values(&slapd, &renamed, "uid"),
        strings(&["mover2"]),
        "old RDN value deleted"
    );

    // To another OU, with changes in the same operation.
    let moved = dn("mover2", DISABLED);
    let applied = t
        .apply(&update(
            &id,
            &renamed,
            Some(&moved),
            vec![Change::Replace("description".into(), strings(&["left"]))],
        ))
        .expect("move");
    assert_eq!(applied.name, moved);
    assert_eq!(uuid(&slapd, &moved), id, "moved, not deleted and re-added");
    assert_eq!(values(&slapd, &moved, "description"), strings(&["left"]));
    assert_eq!(slapd.count("(uid=mover2)"), 1);

    // Rename and move at once.
    let back = dn("mover", PEOPLE);
    t.apply(&update(&id, &moved, Some(&back), vec![]))
        .expect("move back");
    assert_eq!(uuid(&slapd, &back), id);

    // To the same DN (spelled differently): nothing to do.
    let same = "UID=mover, ou=people, dc=example, dc=com";
    assert_eq!(
        t.apply(&update(&id, &back, Some(same), vec![])),
        Ok(Applied {
            id: id.clone(),
            name: back.clone()
        })
    );

    // A rename already made (an export run twice) is found by id.
    assert_eq!(
        t.apply(&update(&id, &old, Some(&back), vec![])),
        Ok(Applied {
            id: id.clone(),
            name: back.clone()
        })
    );

    // Onto a taken name: refused, nothing moves.
    t.apply(&person("taken", "Taken")).expect("create");
    assert!(matches!(
        t.apply(&update(&id, &back, Some(&dn("taken", PEOPLE)), vec![])),
        Err(ExportError::Rejected(_))
    ));
    assert_eq!(uuid(&slapd, &back), id);
}

#[test]
fn an_entry_renamed_by_hand_is_found_by_id() {
    let slapd = Slapd::start();
    let mut t = connected(&slapd, "renamed_by_hand");
    let old = dn("jdoe", PEOPLE);
    let id = t.apply(&person("jdoe", "Doe")).expect("create").id;
    slapd.ldapmodify(&format!(
        "dn: {old}\nchangetype: modrdn\nnewrdn: uid=john.doe\ndeleteoldrdn: 1\nnewsuperior: {DISABLED}\n"
    ));
    let now = dn("john.doe", DISABLED);
    assert_eq!(uuid(&slapd, &now), id);

    // Someone else now holds the old name: it must not be touched.
    slapd.ldapadd(&format!(
        "dn: {old}\nobjectClass: inetOrgPerson\nuid: jdoe\ncn: Another\nsn: Other\n"
    ));
    let other = uuid(&slapd, &old);

    let applied = t
        .apply(&update(
            &id,
            &old,
            None,
            vec![Change::Replace(
                "mail".into(),
                strings(&["john@example.com"]),
            )],
        ))
        .expect("update after a hand rename");
    assert_eq!(
        applied,
        Applied {
            id: id.clone(),
            name: now.clone()
        }
    );
    assert_eq!(values(&slapd, &now, "mail"), strings(&["john@example.com"]));
    assert!(
        values(&slapd, &old, "mail").is_empty(),
        "the newcomer is untouched"
    );

    // A rename from the stale name goes from where the entry is.
    let back = dn("jdoe2", PEOPLE);
    let applied = t
        .apply(&update(&id, &old, Some(&back), vec![]))
        .expect("rename after a hand rename");
    assert_eq!(applied.name, back);
    assert_eq!(uuid(&slapd, &back), id);

    // A delete by the stale name deletes the right entry.
    t.apply(&ExportOp::Delete {
        id: id.clone(),
        name: old.clone(),
    })
    .expect("delete");
    assert!(!exists(&slapd, &back));
    assert_eq!(uuid(&slapd, &old), other);
}

#[test]
fn deletes_and_a_missing_entry_is_not_found() {
    let slapd = Slapd::start();
    let mut t = connected(&slapd, "deletes");
    let jdoe = dn("jdoe", PEOPLE);
    let id = t.apply(&person("jdoe", "Doe")).expect("create").id;
    let delete = ExportOp::Delete {
        id: id.clone(),
        name: jdoe.clone(),
    };
    assert_eq!(
        t.apply(&delete),
        Ok(Applied {
            id: id.clone(),
            name: jdoe.clone()
        })
    );
    assert!(!exists(&slapd, &jdoe));
    assert_eq!(t.apply(&delete), Err(ExportError::NotFound(jdoe.clone())));
    assert_eq!(
        t.apply(&update(
            &id,
            &jdoe,
            None,
            vec![Change::Replace("mail".into(), strings(&["x@example.com"]))]
        )),
        Err(ExportError::NotFound(jdoe.clone()))
    );
    assert_eq!(
        t.apply(&update(&id, &jdoe, Some(&dn("jdoe", DISABLED)), vec![])),
        Err(ExportError::NotFound(jdoe.clone()))
    );
    // An OU with entries below it is refused, not reported missing.
    let ou = ExportOp::Delete {
        id: uuid(&slapd, PEOPLE),
        name: PEOPLE.to_string(),
    };
    t.apply(&person("stays", "Here")).expect("create");
    assert!(
        matches!(t.apply(&ou), Err(ExportError::Rejected(m)) if m.contains("notAllowedOnNonLeaf"))
    );
}

#[test]
fn read_all_pages_through_every_entry() {
    let slapd = Slapd::start();
    let mut ldif = String::new();
    for i in 0..1200 {
        ldif.push_str(&format!(
            "dn: uid=u{i:04},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: u{i:04}\ncn: User {i}\nsn: User\ngivenName: G{i}\n\n"
        ));
    }
    ldif.push_str(&format!(
        "dn: cn=staff,ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: staff\nmember: uid=u0000,{PEOPLE}\n\n"
    ));
    slapd.ldapadd(&ldif);

    let mut t = connected(&slapd, "read_all");
    let mut all: Vec<RemoteObject> = Vec::new();
    t.read_all(&mut |o| all.push(o)).expect("read all");
    assert_eq!(all.len(), 1200);
    let ids: std::collections::HashSet<&str> = all.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids.len(), 1200, "every entry has its own id");
    let u7 = all
        .iter()
        .find(|o| o.name == format!("uid=u0007,{PEOPLE}"))
        .expect("u0007");
    assert_eq!(u7.id, uuid(&slapd, &u7.name));
    assert_eq!(u7.attrs["givenname"], strings(&["G7"]));
    assert_eq!(u7.attrs["cn"], strings(&["User 7"]));
    assert!(!u7.attrs.contains_key("objectClass"));
    assert!(
        !u7.attrs.contains_key("mail"),
        "absent attributes are absent"
    );
}

#[test]
fn a_missing_or_wrong_password_names_the_variable_and_never_the_secret() {
    let slapd = Slapd::start();
    let var = "IDSYNC_TEST_LDAP_PW_missing_never_set";
    let mut t = LdapTarget::new(config(&slapd, var));
    match t.connect() {
        Err(e @ ExportError::Transient(_)) => {
            let m = e.to_string();
            assert!(m.contains(var), "{m}");
            assert!(!m.contains(slapd.password()), "{m}");
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    // An operation without a connection tries to connect, and says why not.
    assert!(matches!(t.find("uid", "x"), Err(ExportError::Transient(m)) if m.contains(var)));

    let var = "IDSYNC_TEST_LDAP_PW_wrong_password";
    set_password(var, "not-the-Pa55word");
    let mut t = LdapTarget::new(config(&slapd, var));
    match t.connect() {
        Err(e @ ExportError::Transient(_)) => {
            let m = e.to_string();
            assert!(m.contains(&slapd.url()), "{m}");
            assert!(m.contains(slapd.admin_dn()), "{m}");
            assert!(m.contains("invalidCredentials"), "{m}");
            assert!(!m.contains("not-the-Pa55word"), "{m}");
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
}

#[test]
fn a_stopped_server_is_transient_and_the_same_op_works_after_a_restart() {
    let mut slapd = Slapd::start();
    let mut t = connected(&slapd, "stopped_server");
    t.apply(&person("before", "Stop")).expect("create");

    slapd.stop();
    let during = person("during", "Stop");
    match t.apply(&during) {
        Err(e @ ExportError::Transient(_)) => {
            assert!(e.to_string().contains(&slapd.url()), "{e}")
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    assert!(t.find("uid", "before").is_err_and(|e| e.is_transient()));
    assert!(t.connect().is_err_and(|e| e.is_transient()));

    slapd.restart();
    let applied = t.apply(&during).expect("the same op after a restart");
    assert_eq!(applied.id, uuid(&slapd, &dn("during", PEOPLE)));
    assert!(
        t.find("uid", "before").expect("find").is_some(),
        "data kept"
    );
}

#[test]
fn a_connection_dropped_between_operations_is_reopened_inside_the_call() {
    let mut slapd = Slapd::start();
    let mut t = connected(&slapd, "reconnects");
    t.apply(&person("a", "A")).expect("create");
    // The target still holds its connection to the old process.
    slapd.restart();
    t.apply(&person("b", "B")).expect("create after a restart");
    assert_eq!(slapd.count("(objectClass=inetOrgPerson)"), 2);
}

/// Sends every op before taking any answer, then takes them all: the
/// creates are on the wire together.
fn pipelined(t: &mut LdapTarget, ops: &[ExportOp]) -> Vec<Result<Applied, ExportError>> {
    assert!(t.window() >= ops.len(), "all in flight at once");
    let sent: Vec<_> = ops.iter().map(|op| t.send(op)).collect();
    for (op, s) in ops.iter().zip(&sent) {
        assert!(s.is_none(), "a create is not answered at once: {op:?}");
    }
    let answers = sent
        .into_iter()
        .map(|s| s.or_else(|| t.receive()).expect("an answer per op"))
        .collect();
    assert_eq!(t.receive(), None, "no answer left over");
    answers
}

fn person_in(uid: &str, ou: &str) -> ExportOp {
    ExportOp::Create {
        name: dn(uid, ou),
        attrs: attrs(&[("uid", &[uid]), ("cn", &[uid]), ("sn", &[uid])]),
    }
}

#[test]
fn pipelined_creates_are_answered_in_order_and_a_refusal_spoils_none() {
    let slapd = Slapd::start();
    let mut t = connected(&slapd, "pipelined_refusal");
    let no_sn = ExportOp::Create {
        name: dn("nosn", PEOPLE),
        attrs: attrs(&[("uid", &["nosn"]), ("cn", &["No Surname"])]),
    };
    let bad_mail = ExportOp::Create {
        name: dn("jose", PEOPLE),
        attrs: attrs(&[
            ("uid", &["jose"]),
            ("cn", &["José"]),
            ("sn", &["José"]),
            ("mail", &["josé@example.com"]),
        ]),
    };
    let ops = vec![
        person("a", "A"),
        person("b", "B"),
        no_sn,
        person("c", "C"),
        bad_mail,
        person("d", "D"),
    ];
    let answers = pipelined(&mut t, &ops);
    for (i, uid) in [(0, "a"), (1, "b"), (3, "c"), (5, "d")] {
        let name = dn(uid, PEOPLE);
        assert_eq!(
            answers[i],
            Ok(Applied {
                id: uuid(&slapd, &name),
                name
            })
        );
    }
    match &answers[2] {
        Err(ExportError::Rejected(m)) => assert!(m.contains("objectClassViolation (65)"), "{m}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    match &answers[4] {
        Err(ExportError::Rejected(m)) => {
            assert!(m.starts_with(&format!("add {}", dn("jose", PEOPLE))), "{m}");
            assert!(m.contains("invalidAttributeSyntax (21)"), "{m}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(slapd.count("(objectClass=inetOrgPerson)"), 4);
}

#[test]
fn pipelined_creates_under_a_missing_ou_make_it_once() {
    let slapd = Slapd::start();
    let mut t = connected(&slapd, "pipelined_parent");
    let research = format!("ou=Research,{PEOPLE}");
    let lab = format!("ou=Lab,{research}");
    let ops = vec![
        person_in("r1", &research),
        person_in("p1", PEOPLE),
        person_in("r2", &research),
        person_in("l1", &lab),
        person_in("r3", &research),
    ];
    let answers = pipelined(&mut t, &ops);
    for (op, answer) in ops.iter().zip(&answers) {
        let ExportOp::Create { name, .. } = op else {
            unreachable!()
        };
        assert_eq!(
            answer,
            &Ok(Applied {
                id: uuid(&slapd, name),
                name: name.clone()
            })
        );
    }
    assert_eq!(
        slapd.count("(&(objectClass=organizationalUnit)(ou=Research))"),
        1
    );
    assert_eq!(
        slapd.count("(&(objectClass=organizationalUnit)(ou=Lab))"),
        1
    );
    assert_eq!(slapd.count("(objectClass=inetOrgPerson)"), 5);
}

#[test]
fn a_pipelined_create_of_a_taken_name_is_exists_and_the_others_arrive() {
    let slapd = Slapd::start();
    let mut t = connected(&slapd, "pipelined_exists");
    let jdoe = t.apply(&person("jdoe", "Doe")).expect("create");
    let answers = pipelined(
        &mut t,
        &[person("a", "A"), person("jdoe", "Doe"), person("b", "B")],
    );
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert_eq!(answers[1], Err(ExportError::Exists(jdoe.name)));
    assert!(answers[2].is_ok(), "{:?}", answers[2]);
    assert_eq!(slapd.count("(objectClass=inetOrgPerson)"), 3);
}

#[test]
fn creates_in_flight_when_the_connection_drops_are_sent_again_and_made_once() {
    let mut slapd = Slapd::start();
    let mut t = connected(&slapd, "pipelined_reconnects");
    let ops: Vec<ExportOp> = ["a", "b", "c", "d"]
        .iter()
        .map(|u| person(u, "X"))
        .collect();
    let sent: Vec<_> = ops.iter().map(|op| t.send(op)).collect();
    assert!(sent.iter().all(Option::is_none));
    // The adds are on the wire; the server may apply them and stop before
    // answering. The target still holds its connection to the old process.
    slapd.restart();
    for op in &ops {
        let ExportOp::Create { name, .. } = op else {
            unreachable!()
        };
        // Sent again on a new connection: made there, or found made by the
        // first attempt, whose answer was lost (the export joins it then).
        match t.receive().expect("an answer") {
            Ok(a) => assert_eq!(
                a,
                Applied {
                    id: uuid(&slapd, name),
                    name: name.clone()
                }
            ),
            Err(e) => assert_eq!(e, ExportError::Exists(name.clone())),
        }
        assert!(exists(&slapd, name), "{name}");
    }
    assert_eq!(slapd.count("(objectClass=inetOrgPerson)"), 4);

    // With the server gone, each is transient and says where.
    slapd.stop();
    for op in [person("e", "X"), person("f", "X")] {
        let answer = t.send(&op).or_else(|| t.receive());
        match answer {
            Some(Err(e @ ExportError::Transient(_))) => {
                assert!(e.to_string().contains(&slapd.url()), "{e}")
            }
            other => panic!("expected a transient error, got {other:?}"),
        }
    }
    slapd.restart();
    let answers = pipelined(&mut t, &[person("e", "X"), person("f", "X")]);
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
}

#[test]
fn abandoned_creates_are_not_answered_and_the_target_goes_on() {
    let slapd = Slapd::start();
    let mut t = connected(&slapd, "pipelined_abandon");
    assert!(t.send(&person("a", "A")).is_none());
    assert!(t.send(&person("b", "B")).is_none());
    t.abandon();
    assert_eq!(t.receive(), None);
    t.apply(&person("c", "C")).expect("create after abandoning");
    let answers = pipelined(&mut t, &[person("d", "D")]);
    assert!(answers[0].is_ok(), "{answers:?}");
}
