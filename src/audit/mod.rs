//! The audit log: what happened, when, run by whom, as records an auditor
//! can trust were not edited afterwards. Each record is hash-chained to the
//! one before (`chain.rs`, pure); the store appends them inside the
//! transaction of what they record (`Tx::audit`), so a record exists exactly
//! when the thing it records happened; `log.rs` verifies, lists and prunes.
//!
//! A record's time is the wall clock when it was written, not the run's
//! clock: `--as-of` previews the rules on another day, it does not change
//! when things happened.

pub mod chain;
pub mod log;

pub use chain::{Anchor, AuditRecord, Problem, ProblemKind, Verified, Verifier};
pub use log::{AuditError, Pruned, prune, verify};

use crate::model::RunId;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// What a record says happened. Stored as its kebab-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    RunStarted,
    RunFinished,
    StepFinished,
    /// The rule files differ from those of the run before.
    RulesChanged,
    QuarantineCleared,
    /// A step deleted past the deletion guard's limits: `--allow-deletes`.
    DeletesAllowed,
    /// Records older than the retention were removed (and the anchor moved).
    AuditPruned,
    AccountCreated,
    AccountUpdated,
    AccountRenamed,
    AccountDisabled,
    AccountDeleted,
    /// An account idsync made was found deleted in the target.
    AccountMissing,
    DriftDetected,
    DriftRolledBack,
    OrphanFound,
    OrphanDisabled,
    OrphanDeleted,
    /// A person decided about a source object: join, project, disconnect.
    DecisionMade,
}

impl AuditKind {
    pub const ALL: [AuditKind; 19] = [
        AuditKind::RunStarted,
        AuditKind::RunFinished,
        AuditKind::StepFinished,
        AuditKind::RulesChanged,
        AuditKind::QuarantineCleared,
        AuditKind::DeletesAllowed,
        AuditKind::AuditPruned,
        AuditKind::AccountCreated,
        AuditKind::AccountUpdated,
        AuditKind::AccountRenamed,
        AuditKind::AccountDisabled,
        AuditKind::AccountDeleted,
        AuditKind::AccountMissing,
        AuditKind::DriftDetected,
        AuditKind::DriftRolledBack,
        AuditKind::OrphanFound,
        AuditKind::OrphanDisabled,
        AuditKind::OrphanDeleted,
        AuditKind::DecisionMade,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::RunStarted => "run-started",
            AuditKind::RunFinished => "run-finished",
            AuditKind::StepFinished => "step-finished",
            AuditKind::RulesChanged => "rules-changed",
            AuditKind::QuarantineCleared => "quarantine-cleared",
            AuditKind::DeletesAllowed => "deletes-allowed",
            AuditKind::AuditPruned => chain::PRUNED,
            AuditKind::AccountCreated => "account-created",
            AuditKind::AccountUpdated => "account-updated",
            AuditKind::AccountRenamed => "account-renamed",
            AuditKind::AccountDisabled => "account-disabled",
            AuditKind::AccountDeleted => "account-deleted",
            AuditKind::AccountMissing => "account-missing",
            AuditKind::DriftDetected => "drift-detected",
            AuditKind::DriftRolledBack => "drift-rolled-back",
            AuditKind::OrphanFound => "orphan-found",
            AuditKind::OrphanDisabled => "orphan-disabled",
            AuditKind::OrphanDeleted => "orphan-deleted",
            AuditKind::DecisionMade => "decision-made",
        }
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record to append: everything but its place in the chain (seq, prev,
/// hash), which the store gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// RFC 3339, UTC, as [`crate::app::stamp`] writes it (listings and
    /// `--since` compare the text).
    pub at: String,
    pub run: Option<RunId>,
    /// Who: the OS user and host (see [`actor`]).
    pub actor: String,
    pub kind: AuditKind,
    /// The agent or target concerned.
    pub target: Option<String>,
    /// The object: an identity id, an account name, an anchor.
    pub subject: Option<String>,
    pub detail: serde_json::Value,
}

impl AuditEntry {
    /// A record of something happening now, by this process's [`actor`].
    pub fn now(kind: AuditKind, run: Option<RunId>) -> AuditEntry {
        AuditEntry {
            at: crate::app::stamp(chrono::Utc::now()),
            run,
            actor: actor().to_string(),
            kind,
            target: None,
            subject: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> AuditEntry {
        self.target = Some(target.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> AuditEntry {
        self.subject = Some(subject.into());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> AuditEntry {
        self.detail = detail;
        self
    }
}

/// Who this process acts as: `user@host`, the user being the effective OS
/// account (not `$USER`, which a process may set to anything), with the
/// invoking user when run through sudo. Computed once per process.
pub fn actor() -> &'static str {
    static ACTOR: OnceLock<String> = OnceLock::new();
    ACTOR.get_or_init(|| {
        // Without an account name (a container's bare uid), the environment's
        // says more than the number alone.
        let user = os_user()
            .or_else(|| {
                ["USER", "LOGNAME", "USERNAME"]
                    .iter()
                    .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            })
            .or_else(os_uid)
            .unwrap_or_else(|| "unknown".into());
        let host = crate::store::hostname();
        match std::env::var("SUDO_USER") {
            Ok(s) if !s.is_empty() && s != user => format!("{user}@{host} (sudo by {s})"),
            _ => format!("{user}@{host}"),
        }
    })
}

#[cfg(unix)]
fn os_user() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    // SAFETY: passwd is plain data; all-zero is a valid value to be
    // overwritten by getpwuid_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` is as long as we
    // say; the strings in `pwd` point into `buf`, which outlives their use.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name is a NUL-terminated string in `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(unix)]
fn os_uid() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    Some(format!("uid {}", unsafe { libc::geteuid() }))
}

#[cfg(not(unix))]
fn os_user() -> Option<String> {
    None
}

#[cfg(not(unix))]
fn os_uid() -> Option<String> {
    None
}

/// The meta key holding the rule files' digests as of the last run.
pub const RULE_FILES_META: &str = "audit_rule_files";

/// The detail of a `rules-changed` record when `files` (name -> digest)
/// differ from `previous` (the same map as JSON, from the run before);
/// None when they are the same. No previous map: every file is added.
pub fn rules_changed(
    previous: Option<&str>,
    files: &BTreeMap<String, String>,
    rules_hash: &str,
) -> Option<serde_json::Value> {
    let before: BTreeMap<String, String> = previous
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    if &before == files {
        return None;
    }
    let added: Vec<&String> = files.keys().filter(|f| !before.contains_key(*f)).collect();
    let removed: Vec<&String> = before.keys().filter(|f| !files.contains_key(*f)).collect();
    let changed: Vec<&String> = files
        .iter()
        .filter(|(f, d)| before.get(*f).is_some_and(|b| b != *d))
        .map(|(f, _)| f)
        .collect();
    Some(serde_json::json!({
        "rules_hash": rules_hash,
        "added": added,
        "changed": changed,
        "removed": removed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_changes_name_the_files_added_changed_and_removed() {
        let files = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let before = files(&[("a.toml", "1"), ("b.toml", "2"), ("c.toml", "3")]);
        let text = serde_json::to_string(&before).expect("json");
        assert_eq!(rules_changed(Some(&text), &before, "h"), None);
        let after = files(&[("a.toml", "1"), ("b.toml", "9"), ("d.toml", "4")]);
        let d = rules_changed(Some(&text), &after, "h").expect("changed");
        assert_eq!(d["added"], serde_json::json!(["d.toml"]));
        assert_eq!(d["changed"], serde_json::json!(["b.toml"]));
        assert_eq!(d["removed"], serde_json::json!(["c.toml"]));
        let first = rules_changed(None, &after, "h").expect("first run");
        assert_eq!(first["added"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn kinds_have_distinct_kebab_case_names() {
        let mut names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditKind::ALL.len());
    }

    #[test]
    fn the_actor_names_a_user_and_this_host() {
        let a = actor();
        let (user, host) = a.split_once('@').expect("user@host");
        assert!(!user.is_empty());
        assert!(host.starts_with(&crate::store::hostname()));
    }
}
