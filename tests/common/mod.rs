//! Shared helpers for integration tests: temporary rule sets and stores,
//! staging connector-space objects directly, and running the binary.
#![allow(dead_code)]
pub mod slapd;

pub mod scim;

pub mod chromium;

use idsync::app::App;
use idsync::model::{Record, Schema};
use idsync::store::Store;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    pub fn rules(&self) -> PathBuf {
        self.path("rules")
    }

    pub fn store(&self) -> PathBuf {
        self.path("idsync.db")
    }

    pub fn app(&self) -> App {
        match App::open(&self.rules(), &self.store()) {
            Ok(a) => a,
            Err(e) => panic!("open: {e}"),
        }
    }

    /// Stages a full import of `rows` (anchor, [(attr, value)]) for `agent`.
    pub fn stage(&self, agent: &str, names: &[&str], rows: &[(&str, &[(&str, &str)])]) {
        let schema = Schema::new(names.iter().copied());
        let mut store = Store::open(&self.store()).expect("store");
        let space = store.space(agent).expect("space");
        let tx = store.begin().expect("begin");
        let mut st = tx.stager(agent, &schema, space).expect("stager");
        for (i, (anchor, attrs)) in rows.iter().enumerate() {
            let mut b = Record::builder();
            for (n, v) in attrs.iter() {
                let a = schema.get(n).unwrap_or_else(|| panic!("no attribute {n}"));
                b.push(a, v);
            }
            st.object(anchor, &b.build(), &schema, i as u64 + 2)
                .expect("stage")
                .expect("no duplicate");
        }
        st.finish_full().expect("finish");
        tx.commit().expect("commit");
    }

    /// Runs the built `idsync` binary with this env's rules and store.
    pub fn idsync(&self, args: &[&str]) -> Output {
        self.idsync_env(args, &[])
    }

    pub fn idsync_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_idsync"));
        cmd.arg("--rules")
            .arg(self.rules())
            .arg("--store")
            .arg(self.store())
            .arg("-q");
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run idsync")
    }

    /// `args` must succeed; their standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.idsync(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `--json` and `args` must succeed; their result, parsed.
    pub fn ok_json(&self, args: &[&str]) -> serde_json::Value {
        self.ok_json_env(args, &[])
    }

    /// The identity a source object (`agent:anchor`) is joined to, if any.
    pub fn identity_of(&self, object: &str) -> Option<i64> {
        let out = self.idsync(&["--json", "show", object]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.get(0)?["id"].as_i64()
    }

    /// `--json` and `args` with `env` set; the command must succeed, and its
    /// result is parsed.
    pub fn ok_json_env(&self, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.idsync_env(&all, env);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        serde_json::from_slice(&out.stdout).expect("json")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The repository root, for bundled rules and fixtures.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).expect("copy");
        }
    }
}

/// A copy of the example rules and day-1 data in a temp dir, same layout as
/// the repository (the agents' relative paths are one level shallower).
/// Puts a day's HR files (`fixtures/hr` is day 1, `fixtures/hr/day2` the
/// next) where an [`example_env`]'s rules read them.
pub fn hr_day(e: &Env, dir: &str) {
    for f in ["workday.csv", "sap_hr.csv"] {
        std::fs::copy(
            repo().join(dir).join(f),
            e.path(&format!("fixtures/hr/{f}")),
        )
        .expect("copy a day's HR file");
    }
}

/// Rewrites, in each of an environment's target files, `from` to `to`.
pub fn point_targets(e: &Env, files: &[&str], from: &str, to: &str) {
    for f in files {
        let p = e.path(&format!("rules/targets/{f}.toml"));
        let text = std::fs::read_to_string(&p).expect("read a target file");
        std::fs::write(&p, text.replace(from, to)).expect("write a target file");
    }
}

/// The bundled example with its directory targets on `ldap`.
pub fn example_with_ldap(ldap: &slapd::Slapd) -> Env {
    let e = example_env();
    point_targets(
        &e,
        &["directory", "directory_groups"],
        "ldap://127.0.0.1:3389",
        &ldap.url(),
    );
    e
}

/// The bundled example with its SaaS targets on `url` (a server or a
/// proxy in front of one), retrying quickly.
pub fn example_with_scim(url: &str) -> Env {
    let e = example_env();
    point_targets(
        &e,
        &["saas", "saas_groups"],
        "http://127.0.0.1:8080/v2",
        url,
    );
    point_targets(
        &e,
        &["saas", "saas_groups"],
        "\nresource =",
        "\nbackoff_ms = 20\nresource =",
    );
    e
}

/// The sections of a written reconciliation report, by key, each row a
/// JSON object keyed by column (as `reconcile.json` has them).
pub fn report_sections(dir: &Path) -> std::collections::BTreeMap<String, Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(dir.join("reconcile.json")).expect("report json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("report json parses");
    v["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap_or_default().to_string(),
                s["rows"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// A report row's cell by column name.
pub fn cell<'a>(row: &'a serde_json::Value, col: &str) -> &'a str {
    row[col].as_str().unwrap_or_default()
}

pub fn example_env() -> Env {
    let e = Env::new();
    copy_dir(&repo().join("rules/example"), &e.path("rules"));
    copy_dir(&repo().join("fixtures/hr"), &e.path("fixtures/hr"));
    // Sources and file targets one level up, as in the repository: files
    // stay inside the test's directory.
    for dir in ["rules/agents", "rules/targets"] {
        for entry in std::fs::read_dir(e.path(dir)).expect("rules dir") {
            let p = entry.expect("entry").path();
            let text = std::fs::read_to_string(&p).expect("read");
            let text = text
                .replace("../../../fixtures", "../../fixtures")
                .replace("../../../out", "../../out");
            std::fs::write(&p, text).expect("write");
        }
    }
    e
}
