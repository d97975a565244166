//! From raw rule files to a [`RuleSet`]: resolve names, compile expressions,
//! check every cross-reference, and collect *all* errors with their places
//! before returning. An agent's connector-space schema comes from its
//! `attributes` list, else from the source itself (a CSV header, a table's
//! columns), else from the schema the store saw at the last import.

use super::error::{RuleError, SourceFile, suggest};
use super::raw::{RawAgent, RawFile, RawMetaverse, RawMvType, RawProfile, RawSchedule, RawTest};
use super::*;
use crate::connector::{
    self, ColumnSpec, ColumnSpecs, CsvConfig, Encoding, SqlConfig, SqlDelta, SqlQuery,
};
use crate::expr::{self, ExprError};
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

#[path = "compile_target.rs"]
mod target;

#[path = "compile_fuzzy.rs"]
mod fuzzy;

/// Resolves names against a schema, for expressions.
struct SchemaScope<'a>(&'a Schema);

impl expr::Scope for SchemaScope<'_> {
    fn resolve(&self, name: &str) -> Option<u32> {
        self.0.get(name)
    }
    fn names(&self) -> Vec<String> {
        self.0.names().to_vec()
    }
}

struct Loaded {
    src: SourceFile,
    raw: RawFile,
    /// Digest of the file's name and bytes.
    digest: String,
}

/// Loads and checks every `*.toml` under `dir`. `known_schema` answers with
/// the connector-space attribute names an agent had at its last import, used
/// when the source cannot be read now.
pub fn load(
    dir: &Path,
    known_schema: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<RuleSet, RuleErrors> {
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    if let Err(e) = collect_toml(dir, &mut paths) {
        return Err(RuleErrors(vec![RuleError::file(
            dir,
            format!("cannot read rule directory: {e}"),
        )]));
    }
    paths.sort();
    if paths.is_empty() {
        return Err(RuleErrors(vec![RuleError::file(
            dir,
            "no rule files (*.toml) found",
        )]));
    }

    let mut hasher = crate::model::Fnv::default();
    let mut digests = BTreeMap::new();
    let mut broken = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(RuleError::file(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        // Files are named relative to the rule directory: the same rules
        // given as `rules` or `/etc/idsync/rules`, or copied elsewhere, are
        // the same rules (a delta sync compares this hash).
        let name = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let mut own = crate::model::Fnv::default();
        own.write(name.as_bytes());
        own.write(text.as_bytes());
        digests.insert(name.clone(), own.hex());
        let src = SourceFile { path, text };
        match toml::from_str::<RawFile>(&src.text) {
            Ok(raw) => {
                // Only what shapes the metaverse counts (each target keeps
                // its own digest).
                if raw.shapes_metaverse() {
                    hasher.write(name.as_bytes());
                    hasher.write(src.text.as_bytes());
                }
                files.push(Loaded {
                    src,
                    raw,
                    digest: own.hex(),
                })
            }
            Err(e) => {
                hasher.write(name.as_bytes());
                hasher.write(src.text.as_bytes());
                // Remember the agent's name, so references to it elsewhere
                // do not pile up as errors of their own.
                if let Ok(v) = toml::from_str::<toml::Value>(&src.text)
                    && let Some(n) = v
                        .get("agent")
                        .and_then(|a| a.get("name"))
                        .and_then(|n| n.as_str())
                {
                    broken.push(n.to_string());
                }
                let span = e.span().unwrap_or(0..1);
                let msg = e.message().trim().to_string();
                let help = field_help(&msg);
                errors.push(RuleError::at(&src, span, msg).with_help(help));
            }
        }
    }

    let mut c = Compiler {
        errors,
        agents: Vec::new(),
        broken,
        target_names: Vec::new(),
        target_refs: Vec::new(),
    };
    let mut set = c.compile(dir, files, hasher.hex(), known_schema);
    set.files = digests;
    if c.errors.is_empty() {
        Ok(set)
    } else {
        Err(RuleErrors(c.errors))
    }
}

/// serde says "unknown field `emial`, expected one of `a`, `b`"; turn the
/// list into a suggestion.
fn field_help(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    suggest(name, expected)
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_toml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

struct AgentDraft {
    file: usize,
    name: String,
}

struct Compiler {
    errors: Vec<RuleError>,
    agents: Vec<AgentDraft>,
    /// Agents whose files did not parse: known names, no rules.
    broken: Vec<String>,
    target_names: Vec<String>,
    /// Every target a reference flow names, where it names it.
    /// Flows naming another target: (file, place, target, the attribute an
    /// account flow reads back).
    target_refs: Vec<(SourceFile, Range<usize>, String, Option<String>)>,
}

impl Compiler {
    fn err(
        &mut self,
        src: &SourceFile,
        span: Range<usize>,
        msg: impl Into<String>,
        help: Option<String>,
    ) {
        self.errors
            .push(RuleError::at(src, span, msg).with_help(help));
    }

    fn expr_errors(
        &mut self,
        src: &SourceFile,
        value: &Spanned<String>,
        context: &str,
        errs: Vec<ExprError>,
    ) {
        let vs = value.span();
        for e in errs {
            let start = src.offset_in_string(&vs, e.span.start);
            let end = src.offset_in_string(&vs, e.span.end.max(e.span.start + 1));
            self.err(
                src,
                start..end.max(start + 1),
                format!("{context}: {}", e.message),
                e.help,
            );
        }
    }

    fn compile(
        &mut self,
        dir: &Path,
        files: Vec<Loaded>,
        hash: String,
        known_schema: &dyn Fn(&str) -> Option<Vec<String>>,
    ) -> RuleSet {
        // Agent names first: precedence lists and profiles refer to them.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut target_names: Vec<String> = Vec::new();
        for (i, f) in files.iter().enumerate() {
            if let Some(t) = &f.raw.target {
                let r = &f.raw;
                if r.agent.is_some() {
                    self.errors.push(RuleError::file(
                        &f.src.path,
                        "a file defines one agent or one target, not both",
                    ));
                }
                if !r.columns.is_empty()
                    || !r.join.is_empty()
                    || r.fuzzy_join.is_some()
                    || r.projection.is_some()
                    || r.scope.is_some()
                {
                    self.errors.push(RuleError::file(
                        &f.src.path,
                        "columns, join, projection and scope belong to a source agent, not a [target]",
                    ));
                }
                let name = t.get_ref().name.get_ref().clone();
                if seen.contains_key(&name) || target_names.contains(&name) {
                    self.err(
                        &f.src,
                        t.get_ref().name.span(),
                        format!("agent {name:?} is defined twice"),
                        None,
                    );
                } else if !valid_name(&name) {
                    self.err(
                        &f.src,
                        t.get_ref().name.span(),
                        format!("target name {name:?} must be letters, digits, '-' or '_'"),
                        None,
                    );
                }
                target_names.push(name);
                continue;
            }
            if f.raw.provision.is_some() || f.raw.deprovision.is_some() || f.raw.reconcile.is_some()
            {
                self.errors.push(RuleError::file(
                    &f.src.path,
                    "[provision], [deprovision] and [reconcile] belong to a [target]",
                ));
            }
            let Some(agent) = &f.raw.agent else {
                let r = &f.raw;
                if !r.columns.is_empty()
                    || !r.join.is_empty()
                    || r.fuzzy_join.is_some()
                    || r.projection.is_some()
                    || r.flows.is_some()
                    || r.scope.is_some()
                {
                    self.errors.push(RuleError::file(
                        &f.src.path,
                        "columns, join, projection, scope and flows belong to an agent, but this file has no [agent] table",
                    ));
                }
                continue;
            };
            let name = agent.get_ref().name.get_ref().clone();
            if seen.contains_key(&name) || target_names.contains(&name) {
                let span = agent.get_ref().name.span();
                self.err(
                    &f.src,
                    span,
                    format!("agent {name:?} is defined twice"),
                    None,
                );
                continue;
            }
            if !valid_name(&name) {
                let span = agent.get_ref().name.span();
                self.err(
                    &f.src,
                    span,
                    format!("agent name {name:?} must be letters, digits, '-' or '_'"),
                    None,
                );
            }
            seen.insert(name.clone(), self.agents.len());
            self.agents.push(AgentDraft { file: i, name });
        }

        // The metaverse: exactly one definition.
        let mv_files: Vec<usize> = (0..files.len())
            .filter(|&i| files[i].raw.metaverse.is_some())
            .collect();
        if mv_files.is_empty() {
            self.errors.push(RuleError::file(
                dir,
                "no [metaverse] definition in any rule file",
            ));
        }
        for &extra in mv_files.iter().skip(1) {
            if let Some(m) = &files[extra].raw.metaverse {
                self.err(
                    &files[extra].src,
                    m.span(),
                    "a second [metaverse] definition; there must be one",
                    None,
                );
            }
        }
        let (metaverse, order) = match mv_files.first() {
            Some(&i) => match &files[i].raw.metaverse {
                Some(m) => self.metaverse(&files[i].src, m.get_ref()),
                None => (Metaverse::default(), Vec::new()),
            },
            None => (Metaverse::default(), Vec::new()),
        };

        let mut agents = Vec::new();
        for (pos, &draft_index) in order.iter().enumerate() {
            let draft = &self.agents[draft_index];
            let (fi, name) = (draft.file, draft.name.clone());
            let f = &files[fi];
            if let Some(a) = self.agent(&f.src, &f.raw, pos, &name, &metaverse, known_schema) {
                agents.push(a);
            }
        }
        self.check_precedence(&files, &metaverse, &agents);

        let mut targets: Vec<TargetAgent> = Vec::new();
        for f in &files {
            if f.raw.target.is_some()
                && let Some(t) = self.target(&f.src, &f.raw, f.digest.clone(), &metaverse)
            {
                targets.push(t);
            }
        }
        self.target_names = target_names.clone();
        // A reference flow may name another target (group members are the
        // people's accounts): it must exist.
        for (src, span, target, attr) in std::mem::take(&mut self.target_refs) {
            if !target_names.contains(&target) {
                let help = suggest(&target, target_names.iter().map(String::as_str));
                self.err(
                    &src,
                    span,
                    format!("reference flow: unknown target {target:?}"),
                    help,
                );
                continue;
            }
            // An attribute read back is read by that target's confirming
            // import, which reads only what it is told to.
            let (Some(attr), Some(other)) = (attr, targets.iter_mut().find(|t| t.name == target))
            else {
                continue;
            };
            let fail = match &mut other.connection {
                TargetConnection::Ldap(c) => {
                    c.attributes.push(attr.clone());
                    None
                }
                TargetConnection::Scim(c) => {
                    match crate::connector::scim::check_attribute(&attr, &c.extensions) {
                        Ok(()) => {
                            c.attributes.push(attr.clone());
                            None
                        }
                        Err(e) => Some(format!("account flow: {attr:?}: {e}")),
                    }
                }
                TargetConnection::Sql(c) => {
                    c.read_back.push(attr.clone());
                    None
                }
                TargetConnection::Csv(_) => Some(format!(
                    "account flow: target {target:?} is a file idsync writes whole; it holds no values of its own to read back (value = \"id\" or \"name\" can be)"
                )),
            };
            match fail {
                Some(message) => self.err(&src, span, message, None),
                None if !other.read_back.contains(&attr) => other.read_back.push(attr),
                None => {}
            }
        }
        for t in &mut targets {
            if let TargetConnection::Ldap(c) = &mut t.connection {
                c.attributes.sort();
                c.attributes.dedup();
            }
            if let TargetConnection::Scim(c) = &mut t.connection {
                c.attributes.sort();
                c.attributes.dedup();
            }
        }

        let mut profiles = BTreeMap::new();
        let mut tests = Vec::new();
        for f in &files {
            for p in &f.raw.profile {
                if let Some(profile) = self.profile(&f.src, p) {
                    if profiles.contains_key(&profile.name) {
                        self.err(
                            &f.src,
                            p.get_ref().name.span(),
                            format!("profile {:?} is defined twice", profile.name),
                            None,
                        );
                    }
                    profiles.insert(profile.name.clone(), profile);
                }
            }
            for t in &f.raw.test {
                if let Some(test) = self.test(&f.src, t, &agents, &metaverse) {
                    tests.push(test);
                }
            }
        }
        // Schedules name profiles, which may be defined in any file.
        let mut schedules = Vec::new();
        for f in &files {
            for s in &f.raw.schedule {
                if let Some(schedule) = self.schedule(&f.src, s, &profiles) {
                    schedules.push(schedule);
                }
            }
        }

        let audit = self.audit_settings(&files);

        RuleSet {
            dir: dir.to_path_buf(),
            hash,
            metaverse,
            agents,
            targets,
            profiles,
            schedules,
            tests,
            audit,
            files: BTreeMap::new(),
        }
    }

    /// `[audit]`, in at most one file.
    fn audit_settings(&mut self, files: &[Loaded]) -> AuditSettings {
        let mut settings = AuditSettings::default();
        let mut seen = false;
        for f in files {
            let Some(a) = &f.raw.audit else { continue };
            if seen {
                self.err(
                    &f.src,
                    a.span(),
                    "a second [audit] table; the audit settings belong in one file",
                    None,
                );
                continue;
            }
            seen = true;
            if let Some(days) = &a.get_ref().retention_days {
                match u32::try_from(*days.get_ref()) {
                    Ok(d) if (1..=AuditSettings::MAX_RETENTION_DAYS).contains(&d) => {
                        settings.retention_days = Some(d)
                    }
                    _ => self.err(
                        &f.src,
                        days.span(),
                        format!(
                            "retention_days must be between 1 and {}",
                            AuditSettings::MAX_RETENTION_DAYS
                        ),
                        Some("leave it out to keep the audit log forever".into()),
                    ),
                }
            }
        }
        settings
    }

    /// The metaverse types, and the agents' sync order (indexes into `self.agents`).
    fn metaverse(&mut self, src: &SourceFile, raw: &RawMetaverse) -> (Metaverse, Vec<usize>) {
        let names: Vec<String> = self.agents.iter().map(|a| a.name.clone()).collect();
        let mut order = Vec::new();
        for n in &raw.sync_order {
            match names.iter().position(|a| a == n.get_ref()) {
                Some(i) if order.contains(&i) => self.err(
                    src,
                    n.span(),
                    format!("agent {:?} is listed twice", n.get_ref()),
                    None,
                ),
                Some(i) => order.push(i),
                None if self.broken.contains(n.get_ref()) => {}
                None => {
                    let help = suggest(n.get_ref(), names.iter().map(String::as_str));
                    self.err(
                        src,
                        n.span(),
                        format!("sync_order: unknown agent {:?}", n.get_ref()),
                        help,
                    );
                }
            }
        }
        let mut rest: Vec<usize> = (0..names.len()).filter(|i| !order.contains(i)).collect();
        rest.sort_by(|a, b| names[*a].cmp(&names[*b]));
        order.extend(rest);
        // Agent indexes in the compiled set follow the sync order.
        let position = |draft: usize| order.iter().position(|&o| o == draft);

        let mut types = Vec::new();
        for (tname, t) in &raw.types {
            types.push(self.mv_type(src, tname, t.get_ref(), &names, &position));
        }
        let mut guard = DeletionGuard::default();
        if let Some(g) = &raw.deletion_guard {
            let g = g.get_ref();
            if let Some(n) = &g.max_deletes {
                match u64::try_from(*n.get_ref()) {
                    Ok(v) => guard.max_deletes = v,
                    Err(_) => self.err(src, n.span(), "max_deletes must be 0 or more", None),
                }
            }
            if let Some(p) = &g.max_delete_percent {
                let v = *p.get_ref();
                if (0.0..=100.0).contains(&v) {
                    guard.max_delete_percent = v;
                } else {
                    self.err(
                        src,
                        p.span(),
                        "max_delete_percent must be between 0 and 100",
                        None,
                    );
                }
            }
        }
        let mut mv = Metaverse {
            types,
            guard,
            groups: Vec::new(),
        };
        for g in &raw.groups {
            if let Some(rule) = self.group_rule(src, g.get_ref(), &mv) {
                if mv.groups.iter().any(|x| x.name == rule.name) {
                    self.err(
                        src,
                        g.get_ref().name.span(),
                        format!("group rule {:?} is defined twice", rule.name),
                        None,
                    );
                }
                mv.groups.push(rule);
            }
        }
        (mv, order)
    }

    /// A single-character setting (a delimiter, a quote; `\t` is a tab).
    fn one_byte(
        &mut self,
        src: &SourceFile,
        v: &Option<Spanned<String>>,
        default: u8,
        what: &str,
    ) -> u8 {
        let Some(s) = v else {
            return default;
        };
        let t = s.get_ref();
        let t = if t == "\\t" { "\t" } else { t.as_str() };
        if t.len() == 1 {
            t.as_bytes()[0]
        } else {
            self.err(
                src,
                s.span(),
                format!("{what} must be a single ASCII character"),
                None,
            );
            default
        }
    }

    /// The metaverse type `name` names, or an error at it.
    fn object_type(
        &mut self,
        src: &SourceFile,
        name: &Spanned<String>,
        mv: &Metaverse,
        context: &str,
    ) -> Option<usize> {
        let found = mv.index(name.get_ref());
        if found.is_none() {
            let help = suggest(name.get_ref(), mv.types.iter().map(|t| t.name.as_str()));
            self.err(
                src,
                name.span(),
                format!("{context}unknown object type {:?}", name.get_ref()),
                help,
            );
        }
        found
    }

    fn group_rule(
        &mut self,
        src: &SourceFile,
        g: &super::raw::RawGroupRule,
        mv: &Metaverse,
    ) -> Option<GroupRule> {
        let context = format!("group rule {:?}", g.name.get_ref());
        let prefix = format!("{context}: ");
        let members = self.object_type(src, &g.members, mv, &prefix);
        let group_type = self.object_type(src, &g.group_type, mv, &prefix);
        let (members, group_type) = (members?, group_type?);
        if members == group_type {
            self.err(
                src,
                g.group_type.span(),
                format!("{context}: groups and members must be different types"),
                None,
            );
            return None;
        }
        let gt = &mv.types[group_type];
        let name_attr = gt.schema.get("name");
        let member_attr = gt.schema.get("member").filter(|&a| {
            gt.attrs[a as usize].kind == AttrType::Reference && gt.attrs[a as usize].multi
        });
        if name_attr.is_none() || member_attr.is_none() {
            self.err(
                src,
                g.group_type.span(),
                format!(
                    "{context}: type {:?} needs attributes name = \"string\" and member = {{ type = \"reference\", multi = true }}",
                    gt.name
                ),
                None,
            );
            return None;
        }
        let scope = SchemaScope(&mv.types[members].schema);
        let compile =
            |this: &mut Compiler, text: &Spanned<String>, what: &str| match expr::Expr::compile(
                text.get_ref(),
                &scope,
            ) {
                Ok(e) => Some(e),
                Err(errs) => {
                    this.expr_errors(src, text, &format!("{context} {what}"), errs);
                    None
                }
            };
        let key = compile(self, &g.key, "key");
        let when = match &g.when {
            Some(w) => Some(compile(self, w, "when")?),
            None => None,
        };
        let mut set = Vec::new();
        for (attr, text) in &g.set {
            let a = self.mv_attr(src, attr, gt, &context);
            let e = compile(self, text, &format!("set {:?}", attr.get_ref()));
            if let (Some(a), Some(e)) = (a, e) {
                set.push((a, e));
            }
        }
        Some(GroupRule {
            name: g.name.get_ref().clone(),
            members,
            group_type,
            key: key?,
            when,
            set,
            name_attr: name_attr?,
            member_attr: member_attr?,
        })
    }

    fn agent_ref(
        &mut self,
        src: &SourceFile,
        n: &Spanned<String>,
        names: &[String],
        position: &dyn Fn(usize) -> Option<usize>,
        what: &str,
    ) -> Option<usize> {
        match names.iter().position(|a| a == n.get_ref()) {
            Some(i) => position(i),
            None if self.broken.contains(n.get_ref()) => None,
            None => {
                let help = suggest(n.get_ref(), names.iter().map(String::as_str));
                self.err(
                    src,
                    n.span(),
                    format!("{what}: unknown agent {:?}", n.get_ref()),
                    help,
                );
                None
            }
        }
    }

    fn mv_type(
        &mut self,
        src: &SourceFile,
        tname: &Spanned<String>,
        t: &RawMvType,
        names: &[String],
        position: &dyn Fn(usize) -> Option<usize>,
    ) -> MvType {
        let default_rank: Vec<usize> = t
            .precedence
            .iter()
            .filter_map(|n| self.agent_ref(src, n, names, position, "precedence"))
            .collect();
        let deletion = match t.deletion.as_ref().map(|d| d.get_ref().as_str()) {
            None | Some("last-connector") => Deletion::LastConnector,
            Some("never") => Deletion::Never,
            Some("any-of") => {
                let list: Vec<usize> = t
                    .deletion_agents
                    .iter()
                    .filter_map(|n| self.agent_ref(src, n, names, position, "deletion_agents"))
                    .collect();
                if t.deletion_agents.is_empty()
                    && let Some(d) = &t.deletion
                {
                    self.err(
                        src,
                        d.span(),
                        "deletion = \"any-of\" needs deletion_agents = [...]",
                        None,
                    );
                }
                Deletion::AnyOf(list)
            }
            Some(other) => {
                let help = suggest(other, ["last-connector", "any-of", "never"]);
                if let Some(d) = &t.deletion {
                    self.err(
                        src,
                        d.span(),
                        format!("unknown deletion rule {other:?}"),
                        help,
                    );
                }
                Deletion::LastConnector
            }
        };

        let mut schema = Schema::default();
        let mut attrs = Vec::new();
        for (aname, spec) in &t.attributes {
            let mut attr = MvAttr {
                name: aname.get_ref().clone(),
                kind: AttrType::String,
                multi: false,
                precedence: Precedence::Ranked(default_rank.clone()),
                null: NullPolicy::Skip,
            };
            let type_of = |this: &mut Compiler, v: &str| match AttrType::parse(v) {
                Some(k) => Some(k),
                None => {
                    let help = suggest(v, AttrType::NAMES);
                    this.err(
                        src,
                        spec.span(),
                        format!("attribute {:?}: unknown type {v:?}", aname.get_ref()),
                        help,
                    );
                    None
                }
            };
            match spec.get_ref() {
                toml::Value::String(s) => {
                    if let Some(k) = type_of(self, s) {
                        attr.kind = k;
                    }
                }
                toml::Value::Table(table) => {
                    for (k, v) in table {
                        match (k.as_str(), v) {
                            ("type", toml::Value::String(s)) => {
                                if let Some(k) = type_of(self, s) {
                                    attr.kind = k;
                                }
                            }
                            ("multi", toml::Value::Boolean(b)) => attr.multi = *b,
                            ("precedence", toml::Value::String(s)) if s == "equal" => {
                                attr.precedence = Precedence::Equal
                            }
                            ("precedence", toml::Value::Array(list)) => {
                                let mut rank = Vec::new();
                                for item in list {
                                    let Some(n) = item.as_str() else {
                                        self.err(
                                            src,
                                            spec.span(),
                                            "precedence lists agent names",
                                            None,
                                        );
                                        continue;
                                    };
                                    match names.iter().position(|a| a == n).and_then(position) {
                                        Some(i) => rank.push(i),
                                        None if self.broken.iter().any(|b| b == n) => {}
                                        None => {
                                            let help = suggest(n, names.iter().map(String::as_str));
                                            self.err(src, spec.span(), format!("attribute {:?}: precedence names unknown agent {n:?}", aname.get_ref()), help);
                                        }
                                    }
                                }
                                attr.precedence = Precedence::Ranked(rank);
                            }
                            ("null", toml::Value::String(s)) if s == "skip" => {
                                attr.null = NullPolicy::Skip
                            }
                            ("null", toml::Value::String(s)) if s == "clear" => {
                                attr.null = NullPolicy::Clear
                            }
                            (key @ ("type" | "multi" | "precedence" | "null"), _) => {
                                let expected = match key {
                                    "type" => "a type name",
                                    "multi" => "true or false",
                                    "precedence" => "a list of agents or \"equal\"",
                                    _ => "\"skip\" or \"clear\"",
                                };
                                self.err(
                                    src,
                                    spec.span(),
                                    format!(
                                        "attribute {:?}: {key} must be {expected}",
                                        aname.get_ref()
                                    ),
                                    None,
                                );
                            }
                            (other, _) => {
                                let help = suggest(other, ["type", "multi", "precedence", "null"]);
                                self.err(
                                    src,
                                    spec.span(),
                                    format!(
                                        "attribute {:?}: unknown key {other:?}",
                                        aname.get_ref()
                                    ),
                                    help,
                                );
                            }
                        }
                    }
                }
                _ => self.err(
                    src,
                    spec.span(),
                    format!(
                        "attribute {:?}: expected a type name or a table",
                        aname.get_ref()
                    ),
                    None,
                ),
            }
            schema.add(attr.name.clone());
            attrs.push(attr);
        }
        if attrs.is_empty() {
            self.err(
                src,
                tname.span(),
                format!("object type {:?} has no attributes", tname.get_ref()),
                None,
            );
        }
        // Lineage numbers attributes in 16 bits.
        if attrs.len() > usize::from(u16::MAX) {
            self.err(
                src,
                tname.span(),
                format!(
                    "object type {:?} has more than 65535 attributes",
                    tname.get_ref()
                ),
                None,
            );
        }
        let retain_days = t
            .retain_days
            .as_ref()
            .and_then(|d| match u32::try_from(*d.get_ref()) {
                Ok(v) if v > 0 => Some(v),
                _ => {
                    self.err(
                        src,
                        d.span(),
                        "retain_days must be a positive number of days",
                        None,
                    );
                    None
                }
            });
        let attr_of = |this: &mut Compiler, n: &Spanned<String>, what: &str| {
            let found = schema.get(n.get_ref());
            if found.is_none() {
                let help = suggest(n.get_ref(), schema.names().iter().map(String::as_str));
                this.err(
                    src,
                    n.span(),
                    format!(
                        "{what}: {:?} is not an attribute of {:?}",
                        n.get_ref(),
                        tname.get_ref()
                    ),
                    help,
                );
            }
            found
        };
        let mut retained = Vec::new();
        for (n, v) in &t.retained {
            if let Some(a) = attr_of(self, n, "retained") {
                retained.push((a, v.get_ref().clone()));
            }
        }
        if t.retain_days.is_none()
            && let Some((n, _)) = t.retained.iter().next()
        {
            self.err(src, n.span(), "retained values need retain_days", None);
        }
        let mut wake_on = Vec::new();
        for n in &t.wake_on {
            if let Some(a) = attr_of(self, n, "wake_on") {
                if attrs[a as usize].kind == AttrType::Date {
                    wake_on.push(a);
                } else {
                    self.err(
                        src,
                        n.span(),
                        format!("wake_on: {:?} is not a date attribute", n.get_ref()),
                        None,
                    );
                }
            }
        }
        let mut authoritative_keys = Vec::new();
        for n in &t.authoritative_keys {
            if let Some(a) = attr_of(self, n, "authoritative_keys") {
                let at = &attrs[a as usize];
                if at.multi || at.kind == AttrType::Reference {
                    self.err(
                        src,
                        n.span(),
                        format!(
                            "authoritative_keys: {:?} must be a single-valued, non-reference attribute",
                            n.get_ref()
                        ),
                        None,
                    );
                } else if !authoritative_keys.contains(&a) {
                    authoritative_keys.push(a);
                }
            }
        }
        let leaver = t
            .leaver
            .as_ref()
            .and_then(|text| self.mv_expr(src, text, &SchemaScope(&schema), "leaver"));
        MvType {
            authoritative_keys,
            name: tname.get_ref().clone(),
            leaver,
            schema,
            attrs,
            deletion,
            retain_days,
            retained,
            wake_on,
        }
    }

    fn agent(
        &mut self,
        src: &SourceFile,
        raw: &RawFile,
        index: usize,
        name: &str,
        mv: &Metaverse,
        known_schema: &dyn Fn(&str) -> Option<Vec<String>>,
    ) -> Option<Agent> {
        let ra = raw.agent.as_ref()?.get_ref();
        let columns = self.columns(src, raw);
        let source = self.source(src, ra, columns)?;

        let object_type = self.object_type(src, &ra.object_type, mv, "");

        let schema = if let Some(list) = &ra.attributes {
            Schema::new(list.get_ref().iter().map(|s| s.get_ref().clone()))
        } else {
            match connector::open(&source).schema() {
                Ok(s) => s,
                Err(e) => {
                    match known_schema(name) {
                        Some(names) => Schema::new(names),
                        None => {
                            self.err(
                            src,
                            ra.path.span(),
                            format!("agent {name:?}: cannot learn the attribute names: {e}"),
                            Some("declare them with attributes = [...] or make the source readable".into()),
                        );
                            return None;
                        }
                    }
                }
            }
        };
        self.delta_columns(src, ra, &source);
        if schema.get(ra.anchor.get_ref()).is_none() {
            let help = suggest(
                ra.anchor.get_ref(),
                schema.names().iter().map(String::as_str),
            );
            self.err(
                src,
                ra.anchor.span(),
                format!(
                    "anchor {:?} is not an attribute of agent {name:?}",
                    ra.anchor.get_ref()
                ),
                help,
            );
        }
        let object_type = object_type?;
        let mv_type = &mv.types[object_type];
        let scope = SchemaScope(&schema);

        let mut joins = Vec::new();
        let mut join_names = BTreeSet::new();
        for j in &raw.join {
            let j = j.get_ref();
            if !join_names.insert(j.name.get_ref().clone()) {
                self.err(
                    src,
                    j.name.span(),
                    format!("join rule {:?} is defined twice", j.name.get_ref()),
                    None,
                );
            }
            let context = format!("join rule {:?}", j.name.get_ref());
            let mut parts = Vec::new();
            for m in &j.matches {
                let m = m.get_ref();
                let cs = match expr::Expr::compile(m.cs.get_ref(), &scope) {
                    Ok(e) => Some(e),
                    Err(errs) => {
                        self.expr_errors(src, &m.cs, &context, errs);
                        None
                    }
                };
                let mvattr = self.mv_attr(src, &m.mv, mv_type, &context);
                let mut norms = Vec::new();
                for n in &m.normalize {
                    match Norm::parse(n.get_ref()) {
                        Some(x) => norms.push(x),
                        None => {
                            let help = suggest(n.get_ref(), Norm::ALL.iter().map(|(s, _)| *s));
                            self.err(
                                src,
                                n.span(),
                                format!("{context}: unknown normalization {:?}", n.get_ref()),
                                help,
                            );
                        }
                    }
                }
                if let (Some(cs), Some(mvattr)) = (cs, mvattr) {
                    parts.push(JoinPart {
                        cs,
                        mv: mvattr,
                        normalize: norms,
                    });
                }
            }
            if j.matches.is_empty() {
                self.err(
                    src,
                    j.name.span(),
                    format!("{context}: match = [...] is empty"),
                    None,
                );
            }
            joins.push(JoinRule {
                name: j.name.get_ref().clone(),
                parts,
            });
        }

        let fuzzy = raw
            .fuzzy_join
            .as_ref()
            .and_then(|f| self.fuzzy_join(src, f, &scope, mv_type, &join_names));

        let projection = match &raw.projection {
            None => Projection {
                enabled: false,
                when: None,
            },
            Some(p) => {
                let p = p.get_ref();
                let when =
                    p.when
                        .as_ref()
                        .and_then(|w| match expr::Expr::compile(w.get_ref(), &scope) {
                            Ok(e) => Some(e),
                            Err(errs) => {
                                self.expr_errors(src, w, "projection when", errs);
                                None
                            }
                        });
                Projection {
                    enabled: p.enabled,
                    when,
                }
            }
        };

        let inbound = match &raw.scope {
            None => expr::scope::Filter::default(),
            Some(s) => match expr::scope::Filter::compile(&s.inbound, &scope) {
                Ok(f) => f,
                Err(errs) => {
                    for e in errs {
                        self.err(src, e.span, format!("inbound scope: {}", e.message), e.help);
                    }
                    expr::scope::Filter::default()
                }
            },
        };

        let mut flows = Vec::new();
        if let Some(fl) = &raw.flows {
            for (target, value) in &fl.import {
                if let Some(flow) = self.flow(src, target, value, &scope, mv_type) {
                    flows.push(flow);
                }
            }
        }

        let file = src.path.clone();
        Some(Agent {
            name: name.to_string(),
            index,
            file,
            source,
            object_type,
            anchor: ra.anchor.get_ref().clone(),
            schema,
            joins,
            fuzzy,
            projection,
            inbound,
            flows,
        })
    }

    /// The delta columns must be columns of the source; checked when the
    /// source can be read now (otherwise the import says so).
    fn delta_columns(&mut self, src: &SourceFile, ra: &RawAgent, source: &connector::Source) {
        let (Some(d), connector::Source::Sql(c)) = (&ra.delta, source) else {
            return;
        };
        let Ok(names) = connector::sql::SqlConnector::new(c.clone()).source_columns() else {
            return;
        };
        let d = d.get_ref();
        for (key, c) in std::iter::once(("watermark", &d.watermark))
            .chain(d.tombstone.as_ref().map(|t| ("tombstone", t)))
        {
            if !names.contains(c.get_ref()) {
                let help = suggest(c.get_ref(), names.iter().map(String::as_str))
                    .or_else(|| Some(format!("the source's columns are: {}", names.join(", "))));
                self.err(
                    src,
                    c.span(),
                    format!("{key}: the source has no column {:?}", c.get_ref()),
                    help,
                );
            }
        }
    }

    fn mv_attr(
        &mut self,
        src: &SourceFile,
        name: &Spanned<String>,
        t: &MvType,
        context: &str,
    ) -> Option<u32> {
        match t.schema.get(name.get_ref()) {
            Some(a) => Some(a),
            None => {
                let help = suggest(name.get_ref(), t.schema.names().iter().map(String::as_str));
                self.err(
                    src,
                    name.span(),
                    format!(
                        "{context}: unknown metaverse attribute {:?} of {}",
                        name.get_ref(),
                        t.name
                    ),
                    help,
                );
                None
            }
        }
    }

    fn flow(
        &mut self,
        src: &SourceFile,
        target: &Spanned<String>,
        value: &Spanned<toml::Value>,
        scope: &SchemaScope,
        t: &MvType,
    ) -> Option<ImportFlow> {
        let context = format!("import flow {:?}", target.get_ref());
        let tattr = self.mv_attr(src, target, t, &context);
        let (text, reference, text_span) = match value.get_ref() {
            toml::Value::String(s) => (s.clone(), None, value.span()),
            toml::Value::Table(table) => {
                let mut text = None;
                let mut reference = None;
                for (k, v) in table {
                    match (k.as_str(), v.as_str()) {
                        ("expr", Some(s)) => text = Some(s.to_string()),
                        ("ref", Some(s)) => reference = Some(s.to_string()),
                        (other, _) => {
                            let help = suggest(other, ["expr", "ref"]);
                            self.err(
                                src,
                                value.span(),
                                format!("{context}: unknown key {other:?} (expected a string)"),
                                help,
                            );
                        }
                    }
                }
                let Some(text) = text else {
                    self.err(
                        src,
                        value.span(),
                        format!("{context}: a table flow needs expr = \"...\""),
                        None,
                    );
                    return None;
                };
                // Expression positions inside an inline table are not tracked;
                // errors point at the table.
                (text, reference, value.span())
            }
            _ => {
                self.err(
                    src,
                    value.span(),
                    format!("{context}: expected an expression string"),
                    None,
                );
                return None;
            }
        };
        let compiled = match expr::Expr::compile(&text, scope) {
            Ok(e) => Some(e),
            Err(errs) => {
                if matches!(value.get_ref(), toml::Value::String(_)) {
                    self.expr_errors(src, &Spanned::new(text_span, text.clone()), &context, errs);
                } else {
                    for e in errs {
                        self.err(
                            src,
                            text_span.clone(),
                            format!("{context}: {}", e.message),
                            e.help,
                        );
                    }
                }
                None
            }
        };
        let tattr = tattr?;
        let kind = t.attrs[tattr as usize].kind;
        let reference = match (reference, kind) {
            (Some(r), AttrType::Reference) => match t.schema.get(&r) {
                Some(a) => Some(a),
                None => {
                    let help = suggest(&r, t.schema.names().iter().map(String::as_str));
                    self.err(
                        src,
                        value.span(),
                        format!("{context}: ref names unknown metaverse attribute {r:?}"),
                        help,
                    );
                    None
                }
            },
            (Some(_), _) => {
                self.err(
                    src,
                    value.span(),
                    format!("{context}: ref is only for reference attributes"),
                    None,
                );
                None
            }
            (None, AttrType::Reference) => {
                self.err(
                    src,
                    value.span(),
                    format!("{context}: {:?} is a reference; say which attribute the value is looked up in", target.get_ref()),
                    Some("write { expr = \"...\", ref = \"employeeId\" }".into()),
                );
                None
            }
            (None, _) => None,
        };
        Some(ImportFlow {
            target: tattr,
            expr: compiled?,
            reference,
        })
    }

    fn columns(&mut self, src: &SourceFile, raw: &RawFile) -> ColumnSpecs {
        let mut specs = ColumnSpecs::new();
        for (name, col) in &raw.columns {
            let c = col.get_ref();
            let spec = ColumnSpec {
                rename: c.rename.as_ref().map(|r| r.get_ref().clone()),
                ignore: c.ignore,
                date: c
                    .date
                    .as_ref()
                    .map(|d| d.get_ref().clone().into_vec())
                    .unwrap_or_default(),
                multi: c.multi.as_ref().map(|m| m.get_ref().clone()),
                null_values: c.null_values.clone(),
                trim: c.trim.unwrap_or(true),
            };
            if let Some(d) = &c.date {
                for f in d.get_ref().clone().into_vec() {
                    if let Some(problem) = bad_date_format(&f) {
                        self.err(
                            src,
                            d.span(),
                            format!("column {:?}: date format {f:?}: {problem}", name.get_ref()),
                            None,
                        );
                    }
                }
            }
            if let Some(m) = &c.multi
                && m.get_ref().is_empty()
            {
                self.err(src, m.span(), "multi separator is empty", None);
            }
            specs.insert(name.get_ref().clone(), spec);
        }
        specs
    }

    fn source(
        &mut self,
        src: &SourceFile,
        ra: &RawAgent,
        columns: ColumnSpecs,
    ) -> Option<connector::Source> {
        let base = src.path.parent().unwrap_or(Path::new("."));
        let path = lexical(&base.join(ra.path.get_ref()));
        let display = path.to_string_lossy().into_owned();
        match ra.kind.get_ref().as_str() {
            "csv" => {
                for (v, key) in [(&ra.table, "table"), (&ra.query, "query")] {
                    if let Some(v) = v {
                        self.err(src, v.span(), format!("{key} is for kind = \"sql\""), None);
                    }
                }
                if let Some(d) = &ra.delta {
                    self.err(
                        src,
                        d.span(),
                        "[agent.delta] is for kind = \"sql\"",
                        Some(
                            "a file is a full snapshot: its delta import compares it with the connector space and needs no settings"
                                .into(),
                        ),
                    );
                }
                let delimiter = self.one_byte(src, &ra.delimiter, b',', "delimiter");
                let quote = self.one_byte(src, &ra.quote, b'"', "quote");
                let encoding = match &ra.encoding {
                    None => Encoding::Utf8,
                    Some(e) => match Encoding::parse(e.get_ref()) {
                        Some(x) => x,
                        None => {
                            let help = suggest(e.get_ref(), ["utf-8", "latin-1", "windows-1252"]);
                            self.err(
                                src,
                                e.span(),
                                format!("unknown encoding {:?}", e.get_ref()),
                                help,
                            );
                            Encoding::Utf8
                        }
                    },
                };
                Some(connector::Source::Csv(CsvConfig {
                    path,
                    display,
                    delimiter,
                    quote,
                    encoding,
                    anchor: ra.anchor.get_ref().clone(),
                    columns,
                }))
            }
            "sql" => {
                for (v, key) in [
                    (&ra.delimiter, "delimiter"),
                    (&ra.quote, "quote"),
                    (&ra.encoding, "encoding"),
                ] {
                    if let Some(v) = v {
                        self.err(src, v.span(), format!("{key} is for kind = \"csv\""), None);
                    }
                }
                let query = match (&ra.table, &ra.query) {
                    (Some(t), None) => SqlQuery::Table(t.get_ref().clone()),
                    (None, Some(q)) => SqlQuery::Select(q.get_ref().clone()),
                    (Some(_), Some(q)) => {
                        self.err(src, q.span(), "give either table or query, not both", None);
                        return None;
                    }
                    (None, None) => {
                        self.err(
                            src,
                            ra.kind.span(),
                            "kind = \"sql\" needs table = \"...\" or query = \"SELECT ...\"",
                            None,
                        );
                        return None;
                    }
                };
                let delta = ra.delta.as_ref().map(|d| {
                    let d = d.get_ref();
                    for c in std::iter::once(&d.watermark).chain(&d.tombstone) {
                        if c.get_ref().trim().is_empty() {
                            self.err(src, c.span(), "a column name must not be empty", None);
                        }
                    }
                    if let Some(t) = &d.tombstone
                        && t.get_ref() == d.watermark.get_ref()
                    {
                        self.err(
                            src,
                            t.span(),
                            "the tombstone and the watermark must be different columns",
                            None,
                        );
                    }
                    SqlDelta {
                        watermark: d.watermark.get_ref().clone(),
                        tombstone: d.tombstone.as_ref().map(|t| t.get_ref().clone()),
                    }
                });
                Some(connector::Source::Sql(SqlConfig {
                    path,
                    display,
                    query,
                    anchor: ra.anchor.get_ref().clone(),
                    columns,
                    delta,
                }))
            }
            other => {
                let help = suggest(other, ["csv", "sql"]);
                self.err(
                    src,
                    ra.kind.span(),
                    format!("unknown agent kind {other:?}"),
                    help,
                );
                None
            }
        }
    }

    fn check_precedence(&mut self, files: &[Loaded], mv: &Metaverse, agents: &[Agent]) {
        for a in agents {
            let t = &mv.types[a.object_type];
            for f in &a.flows {
                let attr = &t.attrs[f.target as usize];
                if let Precedence::Ranked(rank) = &attr.precedence
                    && !rank.contains(&a.index)
                    && !attr.multi
                {
                    let Some(lf) = files.iter().find(|l| l.src.path == a.file) else {
                        continue;
                    };
                    let span = lf
                        .raw
                        .flows
                        .as_ref()
                        .and_then(|fl| fl.import.keys().find(|k| k.get_ref() == &attr.name))
                        .map(|k| k.span())
                        .unwrap_or(0..1);
                    self.err(
                        &lf.src,
                        span,
                        format!(
                            "agent {:?} flows into {}.{} but is not in its precedence list",
                            a.name, t.name, attr.name
                        ),
                        Some(
                            "add it to the type's precedence, or give the attribute its own".into(),
                        ),
                    );
                }
            }
        }
    }

    fn profile(&mut self, src: &SourceFile, p: &Spanned<RawProfile>) -> Option<Profile> {
        let p = p.get_ref();
        let names: Vec<String> = self
            .agents
            .iter()
            .map(|a| a.name.clone())
            .chain(self.broken.iter().cloned())
            .collect();
        let mut steps = Vec::new();
        for s in &p.steps {
            let (text, cont) = match s.get_ref() {
                toml::Value::String(t) => (t.clone(), false),
                toml::Value::Table(t) => {
                    let run = t.get("run").and_then(|v| v.as_str()).map(str::to_string);
                    let cont = t
                        .get("continue_on_error")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(false);
                    for k in t.keys() {
                        if k != "run" && k != "continue_on_error" {
                            let help = suggest(k, ["run", "continue_on_error"]);
                            self.err(
                                src,
                                s.span(),
                                format!("profile step: unknown key {k:?}"),
                                help,
                            );
                        }
                    }
                    match run {
                        Some(r) => (r, cont),
                        None => {
                            self.err(src, s.span(), "profile step needs run = \"...\"", None);
                            continue;
                        }
                    }
                }
                _ => {
                    self.err(
                        src,
                        s.span(),
                        "a profile step is a string like \"import hr\" or a table",
                        None,
                    );
                    continue;
                }
            };
            let words: Vec<&str> = text.split_whitespace().collect();
            let action = match words.as_slice() {
                [verb @ ("import" | "full-import"), agent]
                    if self.target_names.iter().any(|n| n == agent) =>
                {
                    let _ = verb;
                    StepAction::Import {
                        agent: agent.to_string(),
                    }
                }
                ["export", agent] => {
                    if !self.target_names.iter().any(|n| n == agent) {
                        let help = suggest(agent, self.target_names.iter().map(String::as_str));
                        self.err(
                            src,
                            s.span(),
                            format!("profile step {text:?}: unknown target {agent:?}"),
                            help,
                        );
                        continue;
                    }
                    StepAction::Export {
                        agent: agent.to_string(),
                    }
                }
                [verb @ ("import" | "full-import" | "delta-import"), agent] => {
                    if !names.iter().any(|n| n == agent) {
                        let help = suggest(agent, names.iter().map(String::as_str));
                        self.err(
                            src,
                            s.span(),
                            format!("profile step {text:?}: unknown agent {agent:?}"),
                            help,
                        );
                        continue;
                    }
                    let agent = agent.to_string();
                    if *verb == "delta-import" {
                        StepAction::DeltaImport { agent }
                    } else {
                        StepAction::Import { agent }
                    }
                }
                ["sync" | "full-sync"] => StepAction::Sync,
                ["delta-sync"] => StepAction::DeltaSync,
                _ => {
                    let help = words.first().and_then(|w| {
                        suggest(
                            w,
                            [
                                "import",
                                "full-import",
                                "delta-import",
                                "sync",
                                "full-sync",
                                "delta-sync",
                                "export",
                            ],
                        )
                    });
                    self.err(
                        src,
                        s.span(),
                        format!("unknown profile step {text:?}"),
                        help,
                    );
                    continue;
                }
            };
            steps.push(ProfileStep {
                action,
                continue_on_error: cont,
            });
        }
        Some(Profile {
            name: p.name.get_ref().clone(),
            description: p.description.clone(),
            steps,
        })
    }

    fn schedule(
        &mut self,
        src: &SourceFile,
        s: &Spanned<RawSchedule>,
        profiles: &BTreeMap<String, Profile>,
    ) -> Option<Schedule> {
        let (line, _, _) = src.locate(s.span().start);
        let raw = s.get_ref();
        let profile = raw.profile.get_ref();
        let mut ok = true;
        if !profiles.contains_key(profile) {
            let help = suggest(profile, profiles.keys().map(String::as_str));
            self.err(
                src,
                raw.profile.span(),
                format!("schedule: unknown profile {profile:?}"),
                help,
            );
            ok = false;
        }
        let when = match (&raw.every, &raw.cron) {
            (Some(every), None) => match crate::schedule::When::every(every.get_ref()) {
                Ok(w) => Some(w),
                Err(e) => {
                    let msg = format!("schedule for {profile:?}: every {:?}: {e}", every.get_ref());
                    self.err(src, every.span(), msg, None);
                    None
                }
            },
            (None, Some(cron)) => match crate::schedule::When::cron(cron.get_ref()) {
                Ok(w) => Some(w),
                Err(e) => {
                    let msg = format!("schedule for {profile:?}: cron {:?}: {e}", cron.get_ref());
                    self.err(src, cron.span(), msg, None);
                    None
                }
            },
            (Some(_), Some(cron)) => {
                self.err(
                    src,
                    cron.span(),
                    format!("schedule for {profile:?}: give either every or cron, not both"),
                    None,
                );
                None
            }
            (None, None) => {
                self.err(
                    src,
                    s.span(),
                    format!(
                        "schedule for {profile:?} needs every = \"15m\" (an interval) or cron = \"0 2 * * *\""
                    ),
                    None,
                );
                None
            }
        };
        Some(Schedule {
            profile: profile.clone(),
            when: when.filter(|_| ok)?,
            description: raw.description.clone(),
            place: format!("{}:{line}", src.path.display()),
        })
    }

    fn test(
        &mut self,
        src: &SourceFile,
        t: &Spanned<RawTest>,
        agents: &[Agent],
        mv: &Metaverse,
    ) -> Option<RuleTest> {
        let (line, _, _) = src.locate(t.span().start);
        let t = t.get_ref();
        let Some(agent) = agents.iter().find(|a| &a.name == t.agent.get_ref()) else {
            // An agent that is defined but did not compile has its own errors already.
            let declared = self.agents.iter().any(|d| &d.name == t.agent.get_ref())
                || self.broken.contains(t.agent.get_ref());
            if declared {
                return None;
            }
            let help = suggest(t.agent.get_ref(), agents.iter().map(|a| a.name.as_str()));
            self.err(
                src,
                t.agent.span(),
                format!(
                    "test {:?}: unknown agent {:?}",
                    t.name.get_ref(),
                    t.agent.get_ref()
                ),
                help,
            );
            return None;
        };
        let values = |v: &toml::Value| -> Vec<String> {
            match v {
                toml::Value::String(s) => vec![s.clone()],
                toml::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect(),
                other => vec![other.to_string()],
            }
        };
        let mut expect = Vec::new();
        let mvt = &mv.types[agent.object_type];
        for (k, v) in &t.expect {
            if mvt.schema.get(k.get_ref()).is_none() {
                let help = suggest(k.get_ref(), mvt.schema.names().iter().map(String::as_str));
                self.err(
                    src,
                    k.span(),
                    format!(
                        "test {:?}: unknown metaverse attribute {:?}",
                        t.name.get_ref(),
                        k.get_ref()
                    ),
                    help,
                );
                continue;
            }
            expect.push((k.get_ref().clone(), values(v)));
        }
        Some(RuleTest {
            name: t.name.get_ref().clone(),
            agent: agent.index,
            file: src.path.clone(),
            line,
            input: t
                .input
                .iter()
                .map(|(k, v)| (k.clone(), values(v)))
                .collect(),
            expect,
        })
    }
}

/// `a/b/../c` -> `a/c`, without touching the file system, so messages show
/// the path a person would type.
fn lexical(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

/// Checks a chrono format string by formatting a date with it.
fn bad_date_format(f: &str) -> Option<String> {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
        return Some("not a valid strftime format (use %Y, %m, %d, ...)".into());
    }
    if !f.contains('%') {
        return Some("has no % fields (use %Y-%m-%d, %d.%m.%Y, ...)".into());
    }
    None
}
