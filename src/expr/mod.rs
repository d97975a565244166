//! The flow expression language (placeholder: attribute references and
//! string literals only, until the full language lands).

pub mod scope;

use chrono::{DateTime, NaiveDateTime, Utc};
use std::ops::Range;

/// Resolves attribute names at compile time.
pub trait Scope {
    fn resolve(&self, name: &str) -> Option<u32>;
    /// Every name, for "did you mean" suggestions.
    fn names(&self) -> Vec<String>;
}

/// The object an expression is evaluated over.
pub trait Input {
    fn count(&self, attr: u32) -> usize;
    fn nth(&self, attr: u32, i: usize) -> Option<&str>;
}

impl Input for crate::model::Record {
    fn count(&self, attr: u32) -> usize {
        crate::model::Record::count(self, attr)
    }
    fn nth(&self, attr: u32, i: usize) -> Option<&str> {
        crate::model::Record::nth(self, attr, i)
    }
}

/// Answers `SelectUniqueValue`: is this value already taken?
pub trait UniqueCheck: Sync {
    fn is_taken(&self, value: &str) -> bool;
}

/// Everything an evaluation may depend on besides the input.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The run's clock; `Now()` returns it.
    pub now: DateTime<Utc>,
    /// A stable key of the object (agent and anchor), for `Guid()`.
    pub object_key: &'a str,
    pub unique: Option<&'a dyn UniqueCheck>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
    Date(NaiveDateTime),
    List(Vec<Value>),
}

impl Value {
    /// The stored form: null is no value, a list is several values.
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Value::Null => Vec::new(),
            Value::Str(s) if s.is_empty() => Vec::new(),
            Value::Str(s) => vec![s.clone()],
            Value::Num(n) => vec![format_num(*n)],
            Value::Bool(b) => vec![b.to_string()],
            Value::Date(d) => vec![format_date(d)],
            Value::List(items) => items.iter().flat_map(Value::to_strings).collect(),
        }
    }
}

fn format_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn format_date(d: &NaiveDateTime) -> String {
    if d.time() == chrono::NaiveTime::MIN {
        d.format("%Y-%m-%d").to_string()
    } else {
        d.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// Byte range inside the expression source.
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

#[derive(Debug, Clone)]
enum Node {
    Attr(u32),
    Lit(String),
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    node: Node,
}

impl Expr {
    pub fn compile(src: &str, scope: &dyn Scope) -> Result<Expr, Vec<ExprError>> {
        let t = src.trim();
        let name = t
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(t);
        if let Some(lit) = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            return Ok(Expr {
                source: src.to_string(),
                node: Node::Lit(lit.to_string()),
            });
        }
        match scope.resolve(name) {
            Some(a) => Ok(Expr {
                source: src.to_string(),
                node: Node::Attr(a),
            }),
            None => Err(vec![ExprError {
                span: 0..src.len(),
                message: format!("unknown attribute {name:?}"),
                help: None,
            }]),
        }
    }

    pub fn eval(&self, input: &dyn Input, _ctx: &Context) -> Result<Value, EvalError> {
        Ok(match &self.node {
            Node::Lit(s) => Value::Str(s.clone()),
            Node::Attr(a) => match input.count(*a) {
                0 => Value::Null,
                1 => Value::Str(input.nth(*a, 0).unwrap_or_default().to_string()),
                n => Value::List(
                    (0..n)
                        .filter_map(|i| input.nth(*a, i))
                        .map(|s| Value::Str(s.to_string()))
                        .collect(),
                ),
            },
        })
    }

    /// Attributes the expression reads.
    pub fn attrs(&self) -> Vec<u32> {
        match self.node {
            Node::Attr(a) => vec![a],
            Node::Lit(_) => Vec::new(),
        }
    }

    /// The attribute, when the expression is nothing but a reference to it.
    pub fn as_attr(&self) -> Option<u32> {
        match self.node {
            Node::Attr(a) => Some(a),
            Node::Lit(_) => None,
        }
    }

    /// Whether it calls `SelectUniqueValue`, which must run in a fixed order.
    pub fn needs_unique(&self) -> bool {
        false
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}
