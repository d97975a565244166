//! Rule errors: `idsync check` reports every error at once, each with file,
//! line, column, the offending line with a caret, and a suggestion.

mod common;
use common::*;

const MV: &str = r#"[metaverse]
sync_order = ["hr"]

[metaverse.types.person]
precedence = ["hr", "payroll"]

[metaverse.types.person.attributes]
employeeId = "string"
email = "string"
birthDate = "dat"
"#;

const HR: &str = r#"[agent]
name = "hr"
kind = "csv"
object_type = "person"
anchor = "Wrker_ID"
path = "hr.csv"
attributes = ["Worker_ID", "Email"]

[[join]]
name = "by-email"
match = [{ cs = "Email", mv = "emial", normalize = ["fold-cas"] }]

[projection]
enabeld = true
"#;

#[test]
fn check_reports_every_error_with_place_and_suggestion() {
    let e = Env::new();
    e.write("rules/mv.toml", MV);
    e.write("rules/hr.toml", HR);
    e.write(
        "rules/profiles.toml",
        "[[profile]]\nname = \"nightly\"\nsteps = [\"import hrr\", \"sink\"]\n",
    );
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let rules = e.rules();
    let mv = rules.join("mv.toml").display().to_string();
    let hr = rules.join("hr.toml").display().to_string();
    let pr = rules.join("profiles.toml").display().to_string();
    let expected = [
        format!("error: {mv}:5:21: precedence: unknown agent \"payroll\""),
        format!(
            "error: {mv}:10:13: attribute \"birthDate\": unknown type \"dat\" (did you mean \"date\"?)"
        ),
        // serde's unknown-field error stops that file, so its other mistakes come next run.
        format!(
            "error: {hr}:14:1: unknown field `enabeld`, expected `enabled` or `when` (did you mean \"enabled\"?)"
        ),
        format!(
            "error: {pr}:3:10: profile step \"import hrr\": unknown agent \"hrr\" (did you mean \"hr\"?)"
        ),
        format!("error: {pr}:3:24: unknown profile step \"sink\" (did you mean \"sync\"?)"),
    ];
    for line in &expected {
        assert!(err.contains(line.as_str()), "missing:\n{line}\nin:\n{err}");
    }
    assert!(err.contains("5 error(s) in rule files"), "{err}");
    // The caret sits under the culprit.
    assert!(
        err.contains("10 | birthDate = \"dat\"\n   |             ^^^^^ did you mean \"date\"?"),
        "{err}"
    );
}

#[test]
fn check_reports_agent_errors_once_the_file_parses() {
    let e = Env::new();
    e.write(
        "rules/mv.toml",
        &MV.replace("\"dat\"", "\"date\"")
            .replace(", \"payroll\"", ""),
    );
    e.write("rules/hr.toml", &HR.replace("enabeld", "enabled"));
    let out = e.idsync(&["check"]);
    let err = stderr(&out);
    let hr = e.rules().join("hr.toml").display().to_string();
    for line in [
        format!(
            "error: {hr}:5:10: anchor \"Wrker_ID\" is not an attribute of agent \"hr\" (did you mean \"Worker_ID\"?)"
        ),
        format!(
            "error: {hr}:11:31: join rule \"by-email\": unknown metaverse attribute \"emial\" of person (did you mean \"email\"?)"
        ),
        format!(
            "error: {hr}:11:53: join rule \"by-email\": unknown normalization \"fold-cas\" (did you mean \"fold-case\"?)"
        ),
    ] {
        assert!(err.contains(line.as_str()), "missing:\n{line}\nin:\n{err}");
    }
    assert!(err.contains("3 error(s)"), "{err}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn toml_syntax_errors_name_their_place() {
    let e = Env::new();
    e.write("rules/mv.toml", "[metaverse\nsync_order = []\n");
    let out = e.idsync(&["check"]);
    let err = stderr(&out);
    let mv = e.rules().join("mv.toml").display().to_string();
    assert!(err.contains(&format!("error: {mv}:1:")), "{err}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_bundled_example_checks_clean() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idsync"))
        .args([
            "--rules",
            "rules/example",
            "--store",
            "/nonexistent/never-created.db",
            "check",
        ])
        .current_dir(repo())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("3 agent(s) (workday, sap, contractors)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn expression_errors_point_into_the_rule_file() {
    let e = Env::new();
    e.write(
        "rules/mv.toml",
        &MV.replace("\"dat\"", "\"date\"")
            .replace(", \"payroll\"", ""),
    );
    e.write(
        "rules/hr.toml",
        &format!(
            "{}\n[flows.import]\nemployeeId = \"Worker_ID\"\nemail = 'ToLowr([Emial]) & \"@x.com\"'\n",
            HR.replace("enabeld", "enabled").replace("Wrker_ID", "Worker_ID").replace("emial", "email").replace("fold-cas\"", "fold-case\"")
        ),
    );
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let hr = e.rules().join("hr.toml").display().to_string();
    // Line 18 is the flow; the columns are those of the culprits inside the string.
    assert!(err.contains(&format!("error: {hr}:18:10: import flow \"email\": unknown function \"ToLowr\" (did you mean \"ToLower\"?)")), "{err}");
    assert!(err.contains(&format!("error: {hr}:18:17: import flow \"email\": unknown attribute \"Emial\" (did you mean \"Email\"?)")), "{err}");
    assert!(err.contains("18 | email = 'ToLowr([Emial]) & \"@x.com\"'\n   |          ^^^^^^ did you mean \"ToLower\"?"), "{err}");
}

#[test]
fn a_missing_source_is_one_error_not_a_cascade() {
    let e = Env::new();
    copy_dir(&repo().join("rules/example"), &e.path("rules"));
    // No fixtures next to the copy: every source is missing, and no store knows the schemas.
    let out = e.idsync(&["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        err.matches("cannot learn the attribute names").count(),
        3,
        "{err}"
    );
    assert!(err.contains("3 error(s) in rule files"), "{err}");
    assert!(
        err.contains("declare them with attributes = [...] or make the source readable"),
        "{err}"
    );
}

#[test]
fn the_rules_hash_is_the_same_wherever_the_rules_are() {
    let e = Env::new();
    // Two copies of the example, each with its data where its paths point.
    for base in ["a", "b/nested"] {
        copy_dir(
            &repo().join("rules/example"),
            &e.path(&format!("{base}/rules/example")),
        );
        copy_dir(
            &repo().join("fixtures/hr"),
            &e.path(&format!("{base}/fixtures/hr")),
        );
    }
    let none = |_: &str| None;
    let load = |dir: &str| idsync::rules::load(&e.path(dir), &none).expect("rules");
    let (a, b) = (load("a/rules/example"), load("b/nested/rules/example"));
    assert_eq!(a.hash, b.hash);
    // A file of run profiles and schedules says nothing about what the
    // metaverse holds; the metaverse's own file does.
    let append = |file: &str| {
        let p = e.path(&format!("b/nested/rules/example/{file}"));
        let text = std::fs::read_to_string(&p).expect("read");
        std::fs::write(&p, text + "\n# changed\n").expect("write");
    };
    append("profiles.toml");
    assert_eq!(a.hash, load("b/nested/rules/example").hash);
    append("metaverse.toml");
    assert_ne!(a.hash, load("b/nested/rules/example").hash);
}

const GOOD_MV: &str = r#"[metaverse]
[metaverse.types.person.attributes]
employeeId = "string"
login = "string"
manager = "reference"
"#;

/// A target with one mistake of each kind it can have.
const BAD_TARGET: &str = r#"[target]
name = "app"
kind = "scim"
object_type = "person"
url = "http://127.0.0.1:1/v2"
token_env = "T"
table = "accounts"

[provision]
name = "login"
match = "userNme"

[flows.export]
userName = "login"
"emails[type eq 'work'" = "login"
manager = { ref = "manager", in = "directory" }
"#;

#[test]
fn target_errors_name_their_place() {
    let e = Env::new();
    e.write("rules/mv.toml", GOOD_MV);
    e.write("rules/app.toml", BAD_TARGET);
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let app = e.rules().join("app.toml").display().to_string();
    for want in [
        // A setting of another kind, with the ones that apply.
        format!("error: {app}:7:9: table is not a setting of a scim target"),
        // `match` must be an attribute the flows write.
        format!(
            "error: {app}:11:9: match = \"userNme\" is not an attribute the export flows write (did you mean \"userName\"?)"
        ),
        // A SCIM path that is not one.
        format!("error: {app}:15:1: export flow \"emails[type eq 'work'\""),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("unknown target \"directory\""), "{err}");
}

const BAD_RECONCILE: &str = r#"[target]
name = "app"
kind = "scim"
object_type = "person"
url = "http://127.0.0.1:1/v2"
token_env = "T"

[provision]
name = "login"

[reconcile]
drift = "authoritive"
orphans = "disable"
missing = "ignore"

[flows.export]
userName = "login"
displayName = { expr = "login", drift = "reprot" }
selfie = { account = "app" }
badge = { account = "badges" }
"#;

#[test]
fn reconcile_policies_are_checked_at_their_place() {
    let e = Env::new();
    e.write("rules/mv.toml", GOOD_MV);
    e.write("rules/app.toml", BAD_RECONCILE);
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let app = e.rules().join("app.toml").display().to_string();
    for want in [
        format!(
            "error: {app}:12:9: unknown drift policy \"authoritive\" (did you mean \"authoritative\"?)"
        ),
        // Disabling an orphan needs the disable values of [deprovision].
        format!("error: {app}:13:11: orphans = \"disable\" sets the [deprovision] disable values"),
        format!("error: {app}:14:11: unknown missing-account policy \"ignore\""),
        format!(
            "error: {app}:18:15: export flow \"displayName\": unknown drift policy \"reprot\" (did you mean \"report\"?)"
        ),
        format!("error: {app}:19:10: export flow \"selfie\": account names this target itself"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    // An account in a target the rules do not have.
    assert!(err.contains("unknown target \"badges\""), "{err}");
}

#[test]
fn authoritative_keys_are_checked_at_their_place() {
    let e = Env::new();
    e.write(
        "rules/mv.toml",
        r#"[metaverse]
[metaverse.types.person]
authoritative_keys = ["employeId", "manager", "phone"]
[metaverse.types.person.attributes]
employeeId = "string"
manager = "reference"
phone = { type = "string", multi = true }
"#,
    );
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let mv = e.rules().join("mv.toml").display().to_string();
    for want in [
        format!(
            "error: {mv}:3:23: authoritative_keys: \"employeId\" is not an attribute of \"person\" (did you mean \"employeeId\"?)"
        ),
        format!(
            "error: {mv}:3:36: authoritative_keys: \"manager\" must be a single-valued, non-reference attribute"
        ),
        format!(
            "error: {mv}:3:47: authoritative_keys: \"phone\" must be a single-valued, non-reference attribute"
        ),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
}

/// An account flow reading an attribute back: from a file idsync writes
/// whole there is nothing to read; a SCIM path must be one.
#[test]
fn read_back_account_flows_are_checked_at_their_place() {
    let e = Env::new();
    e.write("rules/mv.toml", GOOD_MV);
    e.write(
        "rules/badges.toml",
        r#"[target]
name = "badges"
kind = "csv"
object_type = "person"
path = "badges.csv"
key = "login"

[provision]
name = "login"

[flows.export]
owner = "employeeId"
"#,
    );
    e.write(
        "rules/saas.toml",
        r#"[target]
name = "saas"
kind = "scim"
object_type = "person"
url = "http://127.0.0.1:1/v2"
token_env = "T"

[provision]
name = "login"

[flows.export]
userName = "login"
"#,
    );
    e.write(
        "rules/hr.toml",
        r#"[target]
name = "hr-file"
kind = "csv"
object_type = "person"
path = "hr.csv"
key = "id"

[provision]
name = "employeeId"

[flows.export]
badge = { account = "badges", value = "badge_no" }
mail = { account = "saas", value = "emails[type eq 'work'" }
saas_id = { account = "saas" }
"#,
    );
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let hr = e.rules().join("hr.toml").display().to_string();
    for want in [
        format!("error: {hr}:12:9: account flow: target \"badges\" is a file idsync writes whole"),
        format!("error: {hr}:13:8: account flow: \"emails[type eq 'work'\""),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("2 error(s)"), "{err}");
}

/// The attribute an account flow reads back from a directory is read by
/// that directory's confirming import, once, and never written there.
#[test]
fn a_directory_reads_the_attributes_other_targets_read_back() {
    let e = Env::new();
    e.write("rules/mv.toml", GOOD_MV);
    e.write(
        "rules/dir.toml",
        r#"[target]
name = "directory"
kind = "ldap"
object_type = "person"
url = "ldap://127.0.0.1:1"
bind_dn = "cn=admin,dc=example,dc=com"
password_env = "P"
base = "ou=people,dc=example,dc=com"

[provision]
name = '"uid=" & login & ",ou=people,dc=example,dc=com"'

[flows.export]
uid = "login"
"#,
    );
    e.write(
        "rules/hr.toml",
        r#"[target]
name = "hr-file"
kind = "csv"
object_type = "person"
path = "hr.csv"
key = "id"

[provision]
name = "employeeId"

[flows.export]
mail = { account = "directory", value = "mail" }
also = { account = "directory", value = "mail" }
dn = { account = "directory", value = "name" }
"#,
    );
    let rules = idsync::rules::load(&e.rules(), &|_| None).expect("rules");
    let dir = rules.target("directory").expect("directory");
    assert_eq!(dir.read_back, vec!["mail".to_string()]);
    match &dir.connection {
        idsync::rules::TargetConnection::Ldap(c) => {
            assert_eq!(c.attributes, vec!["mail".to_string(), "uid".to_string()])
        }
        other => panic!("{other:?}"),
    }
    assert!(
        dir.flows.iter().all(|f| f.attr != "mail"),
        "read, not written"
    );
}
