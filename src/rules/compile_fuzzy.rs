//! `[fuzzy_join]`: an agent's probabilistic join, compiled against its
//! connector-space schema and metaverse type. The matcher's own checks
//! (levels fit their kinds, blocking keys name compared fields, thresholds
//! in order) run here, so a broken rule stops at load with its place, and
//! the weights are checked against the fields they weigh.

use super::*;
use crate::fuzzy::spec::SpecError;
use crate::fuzzy::{FieldSpec, Level, MatchSpec, Params};
use crate::rules::raw::RawFuzzyJoin;

impl Compiler {
    pub(super) fn fuzzy_join(
        &mut self,
        src: &SourceFile,
        raw: &Spanned<RawFuzzyJoin>,
        scope: &SchemaScope,
        mv_type: &MvType,
        exact_names: &BTreeSet<String>,
    ) -> Option<FuzzyJoin> {
        let span = raw.span();
        let raw = raw.get_ref();
        let name = raw.name.get_ref().clone();
        let context = format!("fuzzy join rule {name:?}");
        let errors_before = self.errors.len();
        if exact_names.contains(&name) {
            self.err(
                src,
                raw.name.span(),
                format!("{context}: a join rule of this agent has the same name"),
                None,
            );
        }
        if raw.fields.is_empty() {
            self.err(
                src,
                span.clone(),
                format!("{context}: fields = [...] is empty"),
                None,
            );
        }
        let (mut fields, mut cs, mut mv) = (Vec::new(), Vec::new(), Vec::new());
        for f in &raw.fields {
            let f = f.get_ref();
            let expr = match expr::Expr::compile(f.cs.get_ref(), scope) {
                Ok(e) => Some(e),
                Err(errs) => {
                    self.expr_errors(src, &f.cs, &context, errs);
                    None
                }
            };
            let attr = self.mv_attr(src, &f.mv, mv_type, &context);
            if mv.contains(&attr) && attr.is_some() {
                self.err(
                    src,
                    f.mv.span(),
                    format!("{context}: {:?} is compared twice", f.mv.get_ref()),
                    None,
                );
            }
            let review_from = f.review_from.as_ref().and_then(|r| {
                let found = level_index(&f.levels, r.get_ref());
                if found.is_none() {
                    let mut names: Vec<String> = f
                        .levels
                        .iter()
                        .map(|l| level_name(l).unwrap_or_else(|| l.label()))
                        .collect();
                    names.push("else".into());
                    let help = suggest(r.get_ref(), names.iter().map(String::as_str))
                        .or_else(|| Some(format!("the field's levels are: {}", names.join(", "))));
                    self.err(
                        src,
                        r.span(),
                        format!(
                            "{context}: review_from {:?} is not a level of this field",
                            r.get_ref()
                        ),
                        help,
                    );
                }
                found
            });
            fields.push(FieldSpec {
                name: f.mv.get_ref().clone(),
                kind: f.kind,
                levels: f.levels.clone(),
                term_frequency: f.term_frequency,
                review_from,
            });
            cs.push(expr);
            mv.push(attr);
        }
        let field_names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
        for key in &raw.blocking {
            for part in &key.get_ref().parts {
                if !field_names.contains(&part.field) {
                    let help = suggest(&part.field, field_names.iter().map(String::as_str));
                    self.err(
                        src,
                        key.span(),
                        format!(
                            "{context}: blocking key {:?} reads {:?}, which is not a compared field (fields are named by their mv attribute)",
                            key.get_ref().name,
                            part.field
                        ),
                        help,
                    );
                }
            }
        }
        if raw.blocking.is_empty() {
            self.err(
                src,
                span.clone(),
                format!("{context}: blocking = [...] is empty, so no pair would ever be compared"),
                Some("add a key such as { name = \"dob\", parts = [{ field = \"birth_date\", transform = \"whole\" }] }".into()),
            );
        }
        let spec = MatchSpec {
            fields,
            blocking: raw.blocking.iter().map(|k| k.get_ref().clone()).collect(),
            thresholds: raw.thresholds,
        };
        let columns: Vec<&str> = field_names.iter().map(String::as_str).collect();
        for e in spec.check(&columns) {
            // Unknown key fields were reported above with a suggestion.
            if !matches!(e, SpecError::KeyField { .. }) {
                self.err(src, span.clone(), format!("{context}: {e}"), None);
            }
        }
        if let Some(w) = &raw.weights {
            for problem in weight_problems(&spec, w.get_ref()) {
                self.err(
                    src,
                    w.span(),
                    format!("{context}: weights: {problem}"),
                    Some("run idsync train-join to write them again".into()),
                );
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(FuzzyJoin {
            name,
            spec,
            cs: cs.into_iter().flatten().collect(),
            mv: mv.into_iter().flatten().collect(),
            params: raw.weights.as_ref().map(|w| w.get_ref().clone()),
        })
    }
}

/// A unit level's name as written (`"date-swapped"`); none for levels
/// with a parameter, which `review_from` names by their label
/// (`"jaro-winkler >= 0.8"`).
fn level_name(l: &Level) -> Option<String> {
    match toml::Value::try_from(l).ok()? {
        toml::Value::String(s) => Some(s),
        _ => None,
    }
}

fn level_index(levels: &[Level], name: &str) -> Option<usize> {
    if name == "else" {
        return Some(levels.len());
    }
    levels
        .iter()
        .position(|l| level_name(l).as_deref() == Some(name) || l.label() == name)
}

fn weight_problems(spec: &MatchSpec, p: &Params) -> Vec<String> {
    let mut out = Vec::new();
    if !(p.lambda > 0.0 && p.lambda < 1.0) {
        out.push(format!("lambda {} is not between 0 and 1", p.lambda));
    }
    if p.fields.len() != spec.fields.len() {
        out.push(format!(
            "{} fields weighed, {} compared",
            p.fields.len(),
            spec.fields.len()
        ));
    }
    for (f, w) in spec.fields.iter().zip(&p.fields) {
        let n = f.level_count();
        if w.m.len() != n || w.u.len() != n {
            out.push(format!(
                "field {:?} has {n} levels (with else), weighed with {} m and {} u",
                f.name,
                w.m.len(),
                w.u.len()
            ));
        }
        if w.m.iter().chain(&w.u).any(|x| !(0.0..=1.0).contains(x)) {
            out.push(format!("field {:?}: an m or u is outside 0..=1", f.name));
        }
    }
    out
}
