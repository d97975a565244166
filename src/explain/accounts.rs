//! Why an identity has, lacks or lost an account in each target: the
//! target's provisioning scope evaluated over the identity now, the
//! account idsync keeps for it, and the change records of accounts
//! disabled or removed.

use super::RunTimes;
use crate::app::{App, Result};
use crate::model::RunId;
use crate::rules::DeprovisionAction;
use crate::store::MvRow;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// An identity's standing in one target.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub target: String,
    pub kind: &'static str,
    /// The provisioning scope (source text); none: every object of the type.
    pub scope: Option<String>,
    /// Whether the identity is in scope now; None when the scope failed.
    pub in_scope: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_error: Option<String>,
    /// What leaving scope does: delete, disable, or disconnect.
    pub deprovision: &'static str,
    /// The account idsync manages, if any.
    pub account: Option<AccountState>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountState {
    /// create (not in the target yet), present, disabled, delete (to delete).
    pub state: String,
    pub name: Option<String>,
    pub remote_id: Option<String>,
    pub created_run: RunId,
    pub created_at: Option<String>,
    pub updated_run: RunId,
    pub updated_at: Option<String>,
    pub pending_export: bool,
    pub awaiting_confirmation: bool,
    pub error: Option<String>,
}

/// Kinds of change records that disabled or removed an account.
pub(super) const ACCOUNT_REMOVALS: &[&str] = &[
    "account-disabled",
    "account-deprovisioned",
    "account-disconnected",
    "account-unprovisioned",
    "exported-disable",
    "exported-delete",
];

/// The identity's standing in every target of its type (`ti`).
pub(super) fn accounts(
    app: &App,
    row: &MvRow,
    ti: usize,
    now: DateTime<Utc>,
    times: &mut RunTimes,
) -> Result<Vec<Account>> {
    let mut accounts = Vec::new();
    // The object key provisioning evaluates with.
    let key = format!("mv/{}", row.id);
    let ctx = crate::expr::Context {
        now,
        object_key: &key,
        unique: None,
    };
    for target in app.rules.targets.iter().filter(|x| x.object_type == ti) {
        let (in_scope, scope_error) = match &target.scope {
            None => (Some(true), None),
            Some(s) => match s.eval(&row.attrs, &ctx) {
                Ok(v) => (Some(crate::engine::truthy(&v)), None),
                Err(e) => (None, Some(e.message)),
            },
        };
        // By target and identity: the accounts table's key.
        let rows = app.store.export_rows(&target.name, &[row.id])?;
        let account = match rows.first() {
            None => None,
            Some(r) => Some(AccountState {
                state: r.state.clone(),
                name: r.name.clone(),
                remote_id: r.remote_id.clone(),
                created_run: r.created_run,
                created_at: times.get(app, r.created_run)?,
                updated_run: r.updated_run,
                updated_at: times.get(app, r.updated_run)?,
                pending_export: r.pending,
                awaiting_confirmation: r.unconfirmed.is_some(),
                error: r.error.clone(),
            }),
        };
        let deprovision = match target.deprovision.action {
            DeprovisionAction::Delete => "delete",
            DeprovisionAction::Disable { .. } => "disable",
            DeprovisionAction::Disconnect => "disconnect",
        };
        let reason = account_reason(
            in_scope,
            account.as_ref().map(|a| a.state.as_str()),
            deprovision,
            target.deprovision.skip_out_of_scope,
        );
        accounts.push(Account {
            target: target.name.clone(),
            kind: target.kind(),
            scope: target.scope.as_ref().map(|s| s.source().to_string()),
            in_scope,
            scope_error,
            deprovision,
            account,
            reason,
        });
    }
    Ok(accounts)
}

/// Why an identity has (or lacks) an account in a target.
fn account_reason(
    in_scope: Option<bool>,
    state: Option<&str>,
    deprovision: &str,
    keep_out_of_scope: bool,
) -> String {
    match (in_scope, state) {
        (None, _) => {
            "the scope could not be evaluated: provisioning leaves the account as it is".into()
        }
        (Some(true), None) => "in scope, no account yet: the next sync provisions one".into(),
        (Some(true), Some("create")) => {
            "in scope: the account is created at the next export".into()
        }
        (Some(true), Some("present")) => "in scope: the account exists".into(),
        (Some(true), Some(s)) => {
            format!("in scope again ({s}): the next sync brings the account back")
        }
        (Some(false), None) => "not in scope: no account".into(),
        (Some(false), Some(_)) if keep_out_of_scope => {
            "out of scope; the target's rules keep accounts that leave scope".into()
        }
        (Some(false), Some("disabled")) => "out of scope: the account is disabled".into(),
        (Some(false), Some("delete")) => {
            "out of scope: the account is deleted at the next export".into()
        }
        (Some(false), Some(_)) => {
            format!("out of scope now: the next sync deprovisions the account ({deprovision})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_reasons_follow_scope_and_state() {
        assert_eq!(
            account_reason(Some(true), Some("present"), "delete", false),
            "in scope: the account exists"
        );
        assert_eq!(
            account_reason(Some(false), Some("delete"), "delete", false),
            "out of scope: the account is deleted at the next export"
        );
        assert_eq!(
            account_reason(Some(false), Some("present"), "disable", false),
            "out of scope now: the next sync deprovisions the account (disable)"
        );
        assert_eq!(
            account_reason(Some(false), Some("present"), "disable", true),
            "out of scope; the target's rules keep accounts that leave scope"
        );
        assert_eq!(
            account_reason(Some(false), None, "delete", false),
            "not in scope: no account"
        );
    }
}
