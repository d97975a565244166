//! `[target]`, `[provision]`, `[deprovision]` and `[flows.export]`: a
//! target agent, compiled against its metaverse type. Expressions here read
//! metaverse attributes.

use super::*;
use crate::connector::target::{
    CsvTargetConfig, LdapConfig, ScimConfig, ScimResource, SqlTargetConfig,
};
use crate::rules::raw::{RawDeprovision, RawProvision, RawTarget};

const LDAP_KEYS: &[&str] = &[
    "url",
    "bind_dn",
    "password_env",
    "base",
    "filter",
    "object_classes",
    "id_attribute",
    "timeout_secs",
];
const SCIM_KEYS: &[&str] = &[
    "url",
    "token_env",
    "resource",
    "extensions",
    "attempts",
    "backoff_ms",
    "timeout_secs",
];
const SQL_KEYS: &[&str] = &["path", "table", "key"];
const CSV_KEYS: &[&str] = &["path", "key", "delimiter"];

/// What a target's flows take from the target: its name (the default of
/// `in`) and its drift policy.
struct FlowOwner<'a> {
    target: &'a str,
    drift: DriftPolicy,
}

impl Compiler {
    pub(super) fn target(
        &mut self,
        src: &SourceFile,
        raw: &RawFile,
        digest: String,
        mv: &Metaverse,
    ) -> Option<TargetAgent> {
        let rt = raw.target.as_ref()?.get_ref();
        let name = rt.name.get_ref().clone();
        let object_type = self.object_type(src, &rt.object_type, mv, "")?;
        let t = &mv.types[object_type];
        let scope = SchemaScope(&t.schema);
        let reconcile = self.reconcile(src, raw);

        let mut flows = Vec::new();
        if let Some(fl) = &raw.flows {
            if !fl.import.is_empty() {
                let span = fl.import.keys().next().map(|k| k.span()).unwrap_or(0..1);
                self.err(
                    src,
                    span,
                    "a target has export flows ([flows.export]), not import flows",
                    None,
                );
            }
            let owner = FlowOwner {
                target: &name,
                drift: reconcile.drift,
            };
            for (attr, value) in &fl.export {
                if let Some(f) = self.export_flow(src, attr, value, &scope, t, &owner) {
                    flows.push(f);
                }
            }
        }
        if flows.is_empty() {
            self.err(
                src,
                raw.target.as_ref().map(|t| t.span()).unwrap_or(0..1),
                format!("target {name:?} has no export flows"),
                Some("add [flows.export] with target attribute = \"expression\"".into()),
            );
        }
        let attrs: Vec<String> = flows.iter().map(|f| f.attr.clone()).collect();

        // Every part is checked before any is given up on: all errors at once.
        let connection = self.connection(src, rt, &attrs);
        // A table's or file's key column identifies an account too.
        let mut matchable = attrs.clone();
        match &connection {
            Some(TargetConnection::Sql(c)) => matchable.push(c.key.clone()),
            Some(TargetConnection::Csv(c)) => matchable.push(c.key.clone()),
            _ => {}
        }
        let provision = match &raw.provision {
            Some(p) => self.provision(src, p.get_ref(), &scope, &matchable),
            None => {
                self.err(
                    src,
                    raw.target.as_ref().map(|t| t.span()).unwrap_or(0..1),
                    format!("target {name:?} needs [provision] with name = \"...\""),
                    Some("name is the account's DN, userName or key, as an expression".into()),
                );
                None
            }
        };
        let deprovision = match &raw.deprovision {
            Some(d) => self.deprovision(src, d.get_ref(), &scope),
            None => Some(Deprovision {
                action: DeprovisionAction::Delete,
                skip_out_of_scope: false,
            }),
        };
        if let ("scim", Some(fl)) = (rt.kind.get_ref().as_str(), &raw.flows) {
            let extensions = rt
                .extensions
                .as_ref()
                .map(|e| e.get_ref().clone())
                .unwrap_or_default();
            for k in fl.export.keys() {
                if let Err(e) = crate::connector::scim::check_attribute(k.get_ref(), &extensions) {
                    self.err(
                        src,
                        k.span(),
                        format!("export flow {:?}: {e}", k.get_ref()),
                        Some("SCIM attributes are paths: userName, name.givenName, emails[type eq \"work\"].value, <extension URN>:attr".into()),
                    );
                }
            }
        }
        let (scope_expr, name_expr, match_attr) = provision?;
        let (deprovision, connection) = (deprovision?, connection?);
        if reconcile.orphans == OrphanAction::Disable
            && !matches!(&deprovision.action, DeprovisionAction::Disable { set, .. } if !set.is_empty())
            && let Some(o) = raw
                .reconcile
                .as_ref()
                .and_then(|r| r.get_ref().orphans.as_ref())
        {
            self.err(
                src,
                o.span(),
                "orphans = \"disable\" sets the [deprovision] disable values, and there are none",
                Some("add [deprovision] action = \"disable\" with set = { ... }".into()),
            );
        }
        let mut quarantine = Quarantine::default();
        if let Some(q) = &rt.quarantine {
            let q = q.get_ref();
            if let Some(p) = &q.error_percent {
                if !(0.0..=100.0).contains(p.get_ref()) {
                    self.err(src, p.span(), "error_percent must be 0 to 100", None);
                }
                quarantine.error_percent = *p.get_ref();
            }
            if let Some(m) = &q.min_errors {
                if *m.get_ref() < 1 {
                    self.err(src, m.span(), "min_errors must be at least 1", None);
                }
                quarantine.min_errors = (*m.get_ref()).max(1) as u64;
            }
        }
        Some(TargetAgent {
            name,
            file: src.path.clone(),
            hash: digest,
            connection,
            object_type,
            scope: scope_expr,
            name_expr,
            match_attr,
            flows,
            deprovision,
            quarantine,
            reconcile,
            read_back: Vec::new(),
        })
    }

    /// `[reconcile]`; each bad value is reported and the default kept, so
    /// the rest of the target is still checked.
    fn reconcile(&mut self, src: &SourceFile, raw: &RawFile) -> Reconcile {
        let mut r = Reconcile::default();
        let Some(rr) = raw.reconcile.as_ref().map(|r| r.get_ref()) else {
            return r;
        };
        if let Some(d) = &rr.drift {
            match DriftPolicy::parse(d.get_ref()) {
                Some(p) => r.drift = p,
                None => self.bad_choice(
                    src,
                    d,
                    "drift policy",
                    &["authoritative", "report", "tolerate"],
                ),
            }
        }
        if let Some(o) = &rr.orphans {
            match o.get_ref().as_str() {
                "report" => r.orphans = OrphanAction::Report,
                "disable" => r.orphans = OrphanAction::Disable,
                "delete" => r.orphans = OrphanAction::Delete,
                _ => self.bad_choice(src, o, "orphan policy", &["report", "disable", "delete"]),
            }
        }
        if let Some(m) = &rr.missing {
            match m.get_ref().as_str() {
                "recreate" => r.recreate_missing = true,
                "report" => r.recreate_missing = false,
                _ => self.bad_choice(src, m, "missing-account policy", &["recreate", "report"]),
            }
        }
        if let Some(g) = rr.grants_access {
            r.grants_access = g;
        }
        r
    }

    fn bad_choice(&mut self, src: &SourceFile, v: &Spanned<String>, what: &str, choices: &[&str]) {
        let help = suggest(v.get_ref(), choices.iter().copied())
            .or_else(|| Some(format!("one of: {}", choices.join(", "))));
        self.err(
            src,
            v.span(),
            format!("unknown {what} {:?}", v.get_ref()),
            help,
        );
    }

    pub(super) fn mv_expr(
        &mut self,
        src: &SourceFile,
        text: &Spanned<String>,
        scope: &SchemaScope,
        context: &str,
    ) -> Option<Expr> {
        match expr::Expr::compile(text.get_ref(), scope) {
            Ok(e) => Some(e),
            Err(errs) => {
                self.expr_errors(src, text, context, errs);
                None
            }
        }
    }

    fn provision(
        &mut self,
        src: &SourceFile,
        p: &RawProvision,
        scope: &SchemaScope,
        attrs: &[String],
    ) -> Option<(Option<Expr>, Expr, Option<String>)> {
        let scope_expr = match &p.scope {
            Some(s) => Some(self.mv_expr(src, s, scope, "provision scope")?),
            None => None,
        };
        let name = self.mv_expr(src, &p.name, scope, "provision name")?;
        let match_attr = match &p.match_attr {
            Some(m) if !attrs.iter().any(|a| a == m.get_ref()) => {
                let help = suggest(m.get_ref(), attrs.iter().map(String::as_str));
                self.err(
                    src,
                    m.span(),
                    format!(
                        "match = {:?} is not an attribute the export flows write",
                        m.get_ref()
                    ),
                    help,
                );
                return None;
            }
            Some(m) => Some(m.get_ref().clone()),
            None => None,
        };
        Some((scope_expr, name, match_attr))
    }

    fn deprovision(
        &mut self,
        src: &SourceFile,
        d: &RawDeprovision,
        scope: &SchemaScope,
    ) -> Option<Deprovision> {
        let action = match d.action.get_ref().as_str() {
            "delete" | "disconnect" => {
                if let Some((k, _)) = d.set.iter().next() {
                    self.err(
                        src,
                        k.span(),
                        "set = {...} is for action = \"disable\"",
                        None,
                    );
                }
                if let Some(n) = &d.name {
                    self.err(src, n.span(), "name is for action = \"disable\"", None);
                }
                if d.action.get_ref() == "delete" {
                    DeprovisionAction::Delete
                } else {
                    DeprovisionAction::Disconnect
                }
            }
            "disable" => {
                let mut set = Vec::new();
                for (attr, text) in &d.set {
                    let context = format!("deprovision set {:?}", attr.get_ref());
                    if let Some(e) = self.mv_expr(src, text, scope, &context) {
                        set.push((attr.get_ref().clone(), e));
                    }
                }
                let name = match &d.name {
                    Some(n) => Some(self.mv_expr(src, n, scope, "deprovision name")?),
                    None => None,
                };
                if set.is_empty() && name.is_none() {
                    self.err(
                        src,
                        d.action.span(),
                        "action = \"disable\" needs set = { attribute = \"expression\" } or name = \"...\"",
                        Some("e.g. set = { active = \"false\" }".into()),
                    );
                    return None;
                }
                DeprovisionAction::Disable { set, name }
            }
            other => {
                let help = suggest(other, ["delete", "disable", "disconnect"]);
                self.err(
                    src,
                    d.action.span(),
                    format!("unknown deprovision action {other:?}"),
                    help,
                );
                return None;
            }
        };
        Some(Deprovision {
            action,
            skip_out_of_scope: d.skip_out_of_scope_deletions,
        })
    }

    fn export_flow(
        &mut self,
        src: &SourceFile,
        attr: &Spanned<String>,
        value: &Spanned<toml::Value>,
        scope: &SchemaScope,
        t: &MvType,
        owner: &FlowOwner,
    ) -> Option<ExportFlow> {
        let (own, drift_default) = (owner.target, owner.drift);
        let context = format!("export flow {:?}", attr.get_ref());
        match value.get_ref() {
            toml::Value::String(_) => {
                let text = Spanned::new(
                    value.span(),
                    value.get_ref().as_str().unwrap_or_default().to_string(),
                );
                let e = self.mv_expr(src, &text, scope, &context)?;
                let multi = e
                    .as_attr()
                    .is_some_and(|a| t.attrs.get(a as usize).is_some_and(|m| m.multi));
                Some(ExportFlow {
                    attr: attr.get_ref().clone(),
                    value: ExportValue::Expr(e),
                    create_only: false,
                    multi,
                    drift: drift_default,
                })
            }
            toml::Value::Table(table) => {
                let (mut text, mut reference, mut target) = (None, None, None);
                let (mut account, mut written_as) = (None, None);
                let (mut create_only, mut multi) = (false, None);
                let mut drift = drift_default;
                for (k, v) in table {
                    match (k.as_str(), v) {
                        ("expr", toml::Value::String(s)) => text = Some(s.clone()),
                        ("ref", toml::Value::String(s)) => reference = Some(s.clone()),
                        ("in", toml::Value::String(s)) => target = Some(s.clone()),
                        ("account", toml::Value::String(s)) => account = Some(s.clone()),
                        ("value", toml::Value::String(s)) if !s.trim().is_empty() => {
                            written_as = Some(s.trim().to_string())
                        }
                        ("create_only", toml::Value::Boolean(b)) => create_only = *b,
                        ("multi", toml::Value::Boolean(b)) => multi = Some(*b),
                        ("drift", toml::Value::String(s)) if DriftPolicy::parse(s).is_some() => {
                            drift = DriftPolicy::parse(s).unwrap_or(drift_default);
                        }
                        ("drift", toml::Value::String(s)) => {
                            let help = suggest(s, ["authoritative", "report", "tolerate"]);
                            self.err(
                                src,
                                value.span(),
                                format!("{context}: unknown drift policy {s:?}"),
                                help,
                            );
                        }
                        (other, _) => {
                            let help = suggest(
                                other,
                                [
                                    "expr",
                                    "ref",
                                    "in",
                                    "account",
                                    "value",
                                    "create_only",
                                    "multi",
                                    "drift",
                                ],
                            );
                            self.err(
                                src,
                                value.span(),
                                format!(
                                    "{context}: unknown key {other:?} or a value of the wrong type"
                                ),
                                help,
                            );
                            return None;
                        }
                    }
                }
                if written_as.is_some() && account.is_none() {
                    self.err(
                        src,
                        value.span(),
                        format!("{context}: value = \"...\" goes with account"),
                        None,
                    );
                }
                let value_of = match (text, reference, account) {
                    (None, None, Some(other)) => {
                        if other == own {
                            self.err(
                                src,
                                value.span(),
                                format!("{context}: account names this target itself"),
                                Some("an account flow reads the identity's account in another target".into()),
                            );
                            return None;
                        }
                        let read = match written_as.as_deref() {
                            None | Some("id") => AccountRead::Id,
                            Some("name") => AccountRead::Name,
                            Some(a) => AccountRead::Attribute(a.to_string()),
                        };
                        self.target_refs.push((
                            src.clone(),
                            value.span(),
                            other.clone(),
                            match &read {
                                AccountRead::Attribute(a) => Some(a.clone()),
                                _ => None,
                            },
                        ));
                        ExportValue::Account {
                            target: other,
                            read,
                        }
                    }
                    (Some(text), None, None) => {
                        if target.is_some() {
                            self.err(
                                src,
                                value.span(),
                                format!("{context}: in = \"...\" goes with ref"),
                                None,
                            );
                        }
                        let e =
                            self.mv_expr(src, &Spanned::new(value.span(), text), scope, &context)?;
                        ExportValue::Expr(e)
                    }
                    (None, Some(r), None) => {
                        let Some(a) = t.schema.get(&r) else {
                            let help = suggest(&r, t.schema.names().iter().map(String::as_str));
                            self.err(
                                src,
                                value.span(),
                                format!("{context}: ref names unknown metaverse attribute {r:?}"),
                                help,
                            );
                            return None;
                        };
                        if t.attrs[a as usize].kind != AttrType::Reference {
                            self.err(
                                src,
                                value.span(),
                                format!("{context}: {r:?} is not a reference attribute"),
                                None,
                            );
                            return None;
                        }
                        if multi.is_none() {
                            multi = Some(t.attrs[a as usize].multi);
                        }
                        let target = target.unwrap_or_else(|| own.to_string());
                        self.target_refs
                            .push((src.clone(), value.span(), target.clone(), None));
                        ExportValue::Ref { attr: a, target }
                    }
                    _ => {
                        self.err(
                            src,
                            value.span(),
                            format!("{context}: a table flow needs one of expr = \"...\", ref = \"...\" or account = \"<target>\""),
                            None,
                        );
                        return None;
                    }
                };
                Some(ExportFlow {
                    attr: attr.get_ref().clone(),
                    value: value_of,
                    create_only,
                    multi: multi.unwrap_or(false),
                    // A create-only value is the target's from then on.
                    drift: if create_only {
                        DriftPolicy::Tolerate
                    } else {
                        drift
                    },
                })
            }
            _ => {
                self.err(
                    src,
                    value.span(),
                    format!("{context}: expected an expression string or a table"),
                    None,
                );
                None
            }
        }
    }

    fn connection(
        &mut self,
        src: &SourceFile,
        rt: &RawTarget,
        attrs: &[String],
    ) -> Option<TargetConnection> {
        let kind = rt.kind.get_ref().as_str();
        let allowed: &[&str] = match kind {
            "ldap" => LDAP_KEYS,
            "scim" => SCIM_KEYS,
            "sql" => SQL_KEYS,
            "csv" => CSV_KEYS,
            other => {
                let help = suggest(other, ["ldap", "scim", "sql", "csv"]);
                self.err(
                    src,
                    rt.kind.span(),
                    format!("unknown target kind {other:?}"),
                    help,
                );
                return None;
            }
        };
        // Every key set, with its span, to say which ones this kind ignores.
        let present: Vec<(&str, Range<usize>)> = [
            ("url", rt.url.as_ref().map(|v| v.span())),
            ("bind_dn", rt.bind_dn.as_ref().map(|v| v.span())),
            ("password_env", rt.password_env.as_ref().map(|v| v.span())),
            ("base", rt.base.as_ref().map(|v| v.span())),
            ("filter", rt.filter.as_ref().map(|v| v.span())),
            (
                "object_classes",
                rt.object_classes.as_ref().map(|v| v.span()),
            ),
            ("id_attribute", rt.id_attribute.as_ref().map(|v| v.span())),
            ("token_env", rt.token_env.as_ref().map(|v| v.span())),
            ("resource", rt.resource.as_ref().map(|v| v.span())),
            ("extensions", rt.extensions.as_ref().map(|v| v.span())),
            ("attempts", rt.attempts.as_ref().map(|v| v.span())),
            ("backoff_ms", rt.backoff_ms.as_ref().map(|v| v.span())),
            ("timeout_secs", rt.timeout_secs.as_ref().map(|v| v.span())),
            ("path", rt.path.as_ref().map(|v| v.span())),
            ("table", rt.table.as_ref().map(|v| v.span())),
            ("key", rt.key.as_ref().map(|v| v.span())),
            ("delimiter", rt.delimiter.as_ref().map(|v| v.span())),
        ]
        .into_iter()
        .filter_map(|(k, s)| s.map(|s| (k, s)))
        .collect();
        let mut ok = true;
        for (k, span) in &present {
            if !allowed.contains(k) {
                self.err(
                    src,
                    span.clone(),
                    format!("{k} is not a setting of a {kind} target"),
                    Some(format!("a {kind} target takes: {}", allowed.join(", "))),
                );
                ok = false;
            }
        }
        let target_span = rt.kind.span();
        let mut need = |this: &mut Compiler, v: &Option<Spanned<String>>, key: &str| -> String {
            match v {
                Some(s) => s.get_ref().clone(),
                None => {
                    this.err(
                        src,
                        target_span.clone(),
                        format!("a {kind} target needs {key} = \"...\""),
                        None,
                    );
                    ok = false;
                    String::new()
                }
            }
        };
        let positive = |this: &mut Compiler, v: &Option<Spanned<i64>>, default: u64| -> u64 {
            match v {
                None => default,
                Some(n) if *n.get_ref() >= 1 => *n.get_ref() as u64,
                Some(n) => {
                    this.err(src, n.span(), "must be at least 1", None);
                    default
                }
            }
        };
        let dir = src.path.parent().unwrap_or(Path::new("."));
        let conn = match kind {
            "ldap" => {
                let url = need(self, &rt.url, "url");
                let bind_dn = need(self, &rt.bind_dn, "bind_dn");
                let password_env = need(self, &rt.password_env, "password_env");
                let base = need(self, &rt.base, "base");
                let object_classes = rt
                    .object_classes
                    .as_ref()
                    .map(|v| v.get_ref().clone())
                    .unwrap_or_else(|| vec!["inetOrgPerson".to_string()]);
                let filter = rt
                    .filter
                    .as_ref()
                    .map(|f| f.get_ref().clone())
                    .unwrap_or_else(|| {
                        format!(
                            "(objectClass={})",
                            object_classes.last().map(String::as_str).unwrap_or("*")
                        )
                    });
                TargetConnection::Ldap(LdapConfig {
                    url,
                    bind_dn,
                    password_env,
                    base,
                    filter,
                    object_classes,
                    id_attr: rt
                        .id_attribute
                        .as_ref()
                        .map(|v| v.get_ref().clone())
                        .unwrap_or_else(|| "entryUUID".to_string()),
                    attributes: attrs.to_vec(),
                    timeout_secs: positive(self, &rt.timeout_secs, 30),
                })
            }
            "scim" => {
                let url = need(self, &rt.url, "url");
                let token_env = need(self, &rt.token_env, "token_env");
                let resource = match rt.resource.as_ref().map(|r| r.get_ref().as_str()) {
                    None | Some("Users") => ScimResource::Users,
                    Some("Groups") => ScimResource::Groups,
                    Some(other) => {
                        let help = suggest(other, ["Users", "Groups"]);
                        if let Some(r) = &rt.resource {
                            self.err(
                                src,
                                r.span(),
                                format!("unknown SCIM resource {other:?}"),
                                help,
                            );
                        }
                        ok = false;
                        ScimResource::Users
                    }
                };
                TargetConnection::Scim(ScimConfig {
                    url: url.trim_end_matches('/').to_string(),
                    token_env,
                    resource,
                    extensions: rt
                        .extensions
                        .as_ref()
                        .map(|v| v.get_ref().clone())
                        .unwrap_or_default(),
                    attributes: attrs.to_vec(),
                    timeout_secs: positive(self, &rt.timeout_secs, 30),
                    attempts: positive(self, &rt.attempts, 4) as u32,
                    backoff_ms: positive(self, &rt.backoff_ms, 500),
                })
            }
            "sql" => {
                let path = need(self, &rt.path, "path");
                let table = need(self, &rt.table, "table");
                let key = need(self, &rt.key, "key");
                let path = lexical(&dir.join(path));
                TargetConnection::Sql(SqlTargetConfig {
                    display: path.to_string_lossy().into_owned(),
                    path,
                    table,
                    columns: attrs.iter().filter(|a| **a != key).cloned().collect(),
                    key,
                    read_back: Vec::new(),
                })
            }
            _ => {
                let path = need(self, &rt.path, "path");
                let key = need(self, &rt.key, "key");
                let delimiter = self.one_byte(src, &rt.delimiter, b',', "delimiter");
                let path = lexical(&dir.join(path));
                TargetConnection::Csv(CsvTargetConfig {
                    display: path.to_string_lossy().into_owned(),
                    path,
                    delimiter,
                    columns: attrs.iter().filter(|a| **a != key).cloned().collect(),
                    key,
                })
            }
        };
        ok.then_some(conn)
    }
}
