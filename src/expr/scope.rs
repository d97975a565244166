//! Scoping filters (placeholder until the full operator set lands).

use super::{Context, Input, Scope};
use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClause {
    pub attribute: Spanned<String>,
    pub operator: Spanned<String>,
    #[serde(default)]
    pub value: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeError {
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    groups: Vec<Vec<(u32, String, Option<String>)>>,
}

impl Filter {
    pub fn compile(
        groups: &[Vec<RawClause>],
        scope: &dyn Scope,
    ) -> Result<Filter, Vec<ScopeError>> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for g in groups {
            let mut clauses = Vec::new();
            for c in g {
                match scope.resolve(c.attribute.get_ref()) {
                    Some(a) => clauses.push((
                        a,
                        c.operator.get_ref().clone(),
                        c.value
                            .as_ref()
                            .and_then(|v| v.get_ref().as_str().map(str::to_string)),
                    )),
                    None => errors.push(ScopeError {
                        span: c.attribute.span(),
                        message: format!("unknown attribute {:?}", c.attribute.get_ref()),
                        help: None,
                    }),
                }
            }
            out.push(clauses);
        }
        if errors.is_empty() {
            Ok(Filter { groups: out })
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn eval(&self, input: &dyn Input, _ctx: &Context) -> bool {
        self.groups.is_empty()
            || self.groups.iter().any(|g| {
                g.iter().all(|(a, op, v)| match op.as_str() {
                    "equals" => input.nth(*a, 0) == v.as_deref(),
                    "not-equals" => input.nth(*a, 0) != v.as_deref(),
                    _ => true,
                })
            })
    }
}
