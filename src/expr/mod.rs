//! The flow expression language of attribute flows and the scoping filters
//! of sync rules. This module owns the public API the engine compiles and
//! evaluates against; the work is split by stage: `lexer` → `parser` (syntax
//! tree with spans) → `check` (names, arity, literal regexes and formats,
//! constant folding) → `eval`/`functions` (per-object evaluation). Compiling
//! once and evaluating a small pre-resolved tree is what keeps a flow under a
//! microsecond per object. `scope` holds the Entra-style scoping filters.
//! The language is documented for rule authors in `rules/README.md`.

mod check;
mod datefmt;
mod eval;
mod functions;
mod lexer;
mod parser;
pub mod scope;
mod share;
mod text;
mod value;

#[cfg(test)]
mod tests;

pub use scope::{Filter, RawClause, ScopeError};

use chrono::{DateTime, NaiveDateTime, Utc};
use eval::Node;
use std::fmt;
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
    /// Null, the empty string, and a list of nothing but those: no value.
    pub fn is_null(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            Value::List(items) => items.iter().all(Value::is_null),
            _ => false,
        }
    }

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

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ExprError {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

// The engine evaluates compiled rules from rayon threads.
const _: () = {
    const fn shareable<T: Send + Sync + Clone + fmt::Debug>() {}
    shareable::<Expr>();
    shareable::<Filter>();
};

/// What a `SelectUniqueValue` call would try, in order: the values of its
/// candidates up to the first candidate that failed, and that failure. The
/// first free value is the call's result; the failure is, when every value
/// before it is taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    pub values: Vec<String>,
    pub error: Option<EvalError>,
    /// The candidates after `values` were not evaluated: the caller said
    /// one of `values` would do.
    pub more: bool,
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    root: Node,
    /// Sub-expressions that occur more than once, computed once per
    /// evaluation (`share`).
    shared: Vec<Node>,
    attrs: Vec<u32>,
    needs_unique: bool,
}

impl Expr {
    /// Parses and checks `src`, resolving attribute names through `scope`.
    /// On failure every error found is returned, sorted by position.
    pub fn compile(src: &str, scope: &dyn Scope) -> Result<Expr, Vec<ExprError>> {
        let mut errors = Vec::new();
        let tokens = lexer::lex(src, &mut errors);
        let ast = parser::parse(tokens, &mut errors);
        let root = check::check(&ast, src, scope, &mut errors);
        if !errors.is_empty() {
            errors.sort_by_key(|e| (e.span.start, e.span.end));
            errors.dedup();
            return Err(errors);
        }
        let mut attrs = Vec::new();
        let mut needs_unique = false;
        root.walk(&mut |n| match n {
            Node::Attr(a) => attrs.push(*a),
            Node::Call(c) if c.func == functions::Func::SelectUniqueValue => needs_unique = true,
            _ => {}
        });
        attrs.sort_unstable();
        attrs.dedup();
        let (root, shared) = share::share(root);
        Ok(Expr {
            source: src.to_string(),
            root,
            shared,
            attrs,
            needs_unique,
        })
    }

    /// Evaluates over one object. Never panics on any input; a value a
    /// function cannot work with is an `EvalError` naming the function.
    pub fn eval(&self, input: &dyn Input, ctx: &Context) -> Result<Value, EvalError> {
        match &self.root {
            Node::Const(v) => Ok(v.clone()),
            Node::Attr(a) => Ok(eval::read_attr(input, *a).into_value()),
            root => {
                let env = eval::Env::new(input, ctx, &self.source, &self.shared);
                eval::eval(root, &env).map(value::V::into_value)
            }
        }
    }

    /// Attributes the expression reads, sorted, without duplicates.
    pub fn attrs(&self) -> Vec<u32> {
        self.attrs.clone()
    }

    /// The attribute, when the expression is nothing but a reference to it.
    pub fn as_attr(&self) -> Option<u32> {
        match self.root {
            Node::Attr(a) => Some(a),
            _ => None,
        }
    }

    /// The value, when the expression does not depend on the object at all
    /// (literals and calls on literals are folded at compile time).
    pub fn as_const(&self) -> Option<&Value> {
        match &self.root {
            Node::Const(v) => Some(v),
            _ => None,
        }
    }

    /// Whether it calls `SelectUniqueValue`, which must run in a fixed order.
    pub fn needs_unique(&self) -> bool {
        self.needs_unique
    }

    /// When the whole expression is one `SelectUniqueValue(...)` call: its
    /// candidates for this object, in order, so a caller can pick the first
    /// free one itself (many objects at once, without evaluating again).
    /// With `enough`, evaluation stops after the first candidate with a
    /// value it accepts (one that looks free).
    pub fn unique_candidates(
        &self,
        input: &dyn Input,
        ctx: &Context,
        enough: Option<&dyn Fn(&str) -> bool>,
    ) -> Option<Candidates> {
        match &self.root {
            Node::Call(c) if c.func == functions::Func::SelectUniqueValue => {
                let env = eval::Env::new(input, ctx, &self.source, &self.shared);
                Some(functions::unique_candidates(c, &env, enough))
            }
            _ => None,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

/// The usage line of every function, e.g. `Left(source, numChars)`, for
/// listings and editor help.
pub fn function_usages() -> impl Iterator<Item = &'static str> {
    functions::FUNCTIONS.iter().map(|d| d.usage)
}

/// Shows an error under its expression, one line each, for a terminal:
///
/// ```text
/// error: unknown function "Lft"
///   Lft([givenName], 1)
///   ^^^
///   help: did you mean "Left"?
/// ```
///
/// Line breaks and tabs in the source are shown as spaces so the caret
/// stays under the span.
pub fn render_error(src: &str, err: &ExprError) -> String {
    let line: String = src
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let floor = |mut i: usize| {
        i = i.min(src.len());
        while !src.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(err.span.start);
    let end = floor(err.span.end).max(start);
    let col = src[..start].chars().count();
    let width = src[start..end].chars().count().max(1);
    let mut out = format!(
        "error: {}\n  {}\n  {}{}",
        err.message,
        line.trim_end(),
        " ".repeat(col),
        "^".repeat(width)
    );
    if let Some(help) = &err.help {
        out.push_str("\n  help: ");
        out.push_str(help);
    }
    out
}

/// The closest of `candidates` to a misspelt `name`, ignoring case, if any is
/// close enough to be a plausible typo.
pub(crate) fn suggest<'c>(
    name: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let cl = c.to_lowercase();
        let d = strsim::damerau_levenshtein(&lower, &cl);
        let limit = (lower.chars().count().max(cl.chars().count()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}
