//! Turns the syntax tree into the evaluator's `Node` tree: resolves attribute
//! names to indexes and function names to the library, checks arity, picks
//! the form of Entra's seven-argument `Replace`, compiles literal regexes,
//! date formats, intervals and cultures once, and folds calls whose arguments
//! are all literals into constants. Every problem is reported with the span of
//! the offending token; checking continues past errors so one compile lists
//! them all.

use super::datefmt::{DateFmt, INTERVALS_HELP, Interval};
use super::eval::{Call, Env, Node, Prep, eval};
use super::functions::{self, FUNCTIONS, FnDef, Func};
use super::parser::{Ast, AstKind};
use super::value::V;
use super::{Context, ExprError, Input, Scope, Value, suggest, text};
use chrono::{DateTime, Utc};
use regex::Regex;
use std::ops::Range;

pub(super) fn check(
    ast: &Ast,
    source: &str,
    scope: &dyn Scope,
    errors: &mut Vec<ExprError>,
) -> Node {
    let mut c = Checker {
        scope,
        source,
        names: None,
        errors,
    };
    c.node(ast)
}

struct Checker<'s> {
    scope: &'s dyn Scope,
    source: &'s str,
    /// Attribute names for suggestions, fetched on the first unknown name.
    names: Option<Vec<String>>,
    errors: &'s mut Vec<ExprError>,
}

/// Input with no attributes, for folding constant subexpressions.
struct NoInput;

impl Input for NoInput {
    fn count(&self, _: u32) -> usize {
        0
    }
    fn nth(&self, _: u32, _: usize) -> Option<&str> {
        None
    }
}

fn is_present(a: &Ast) -> bool {
    !matches!(a.kind, AstKind::Missing | AstKind::Null)
}

impl Checker<'_> {
    fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        self.errors.push(ExprError {
            span,
            message,
            help,
        });
    }

    fn node(&mut self, ast: &Ast) -> Node {
        let node = match &ast.kind {
            AstKind::Str(s) => Node::Const(Value::Str(s.clone())),
            AstKind::Num(n) => Node::Const(Value::Num(*n)),
            AstKind::Bool(b) => Node::Const(Value::Bool(*b)),
            AstKind::Null | AstKind::Missing | AstKind::Error => Node::Const(Value::Null),
            AstKind::Attr(name) => return self.attr(name, ast.span.clone()),
            AstKind::Not(x) => Node::Not(Box::new(self.node(x))),
            AstKind::And(l, r) => Node::And(Box::new(self.node(l)), Box::new(self.node(r))),
            AstKind::Or(l, r) => Node::Or(Box::new(self.node(l)), Box::new(self.node(r))),
            AstKind::Cmp(op, l, r) => {
                Node::Cmp(*op, Box::new(self.node(l)), Box::new(self.node(r)))
            }
            AstKind::Concat(parts) => Node::Concat(parts.iter().map(|p| self.node(p)).collect()),
            AstKind::Call {
                name,
                name_span,
                args,
                damaged,
            } => match self.call(ast, name, name_span, args, *damaged) {
                Some(n) => n,
                None => return Node::Const(Value::Null),
            },
        };
        self.fold(node, &ast.span)
    }

    fn attr(&mut self, name: &str, span: Range<usize>) -> Node {
        if let Some(i) = self.scope.resolve(name) {
            return Node::Attr(i);
        }
        let names = self.names.get_or_insert_with(|| self.scope.names());
        let help = match suggest(name, names.iter().map(String::as_str)) {
            Some(s) => Some(format!("did you mean \"{s}\"?")),
            None => functions::lookup(name)
                .map(|d| format!("{} is a function: call it as {}", d.name, d.usage)),
        };
        self.error(span, format!("unknown attribute \"{name}\""), help);
        Node::Const(Value::Null)
    }

    /// Evaluates a node now when everything it depends on is known.
    fn fold(&mut self, node: Node, span: &Range<usize>) -> Node {
        let foldable = match &node {
            // Slots exist only after checking.
            Node::Const(_) | Node::Attr(_) | Node::Shared(_) => false,
            Node::Concat(parts) => parts.iter().all(Node::is_const),
            Node::Cmp(_, l, r) | Node::And(l, r) | Node::Or(l, r) => l.is_const() && r.is_const(),
            Node::Not(x) => x.is_const(),
            Node::Call(c) => functions::is_pure(c.func) && c.args.iter().all(Node::is_const),
        };
        if !foldable {
            return node;
        }
        let ctx = Context {
            now: DateTime::<Utc>::UNIX_EPOCH,
            object_key: "",
            unique: None,
        };
        let env = Env::new(&NoInput, &ctx, self.source, &[]);
        let result = eval(&node, &env).map(V::into_value);
        match result {
            Ok(v) => Node::Const(v),
            Err(e) => {
                self.error(span.clone(), e.message, None);
                Node::Const(Value::Null)
            }
        }
    }

    fn call(
        &mut self,
        ast: &Ast,
        name: &str,
        name_span: &Range<usize>,
        args: &[Ast],
        damaged: bool,
    ) -> Option<Node> {
        // Arguments are checked even when the call itself is wrong, so their
        // own mistakes are reported in the same compile.
        let mut nodes: Vec<Node> = args.iter().map(|a| self.node(a)).collect();
        let Some(def) = functions::lookup(name) else {
            let help = suggest(name, FUNCTIONS.iter().map(|d| d.name))
                .map(|s| format!("did you mean \"{s}\"?"));
            self.error(
                name_span.clone(),
                format!("unknown function \"{name}\""),
                help,
            );
            return None;
        };
        if let Some(message) = arity_problem(def, args.len()) {
            if damaged {
                return None;
            }
            self.error(
                name_span.clone(),
                message,
                Some(format!("usage: {}", def.usage)),
            );
            return None;
        }
        let mut spans: Vec<Range<usize>> = args.iter().map(|a| a.span.clone()).collect();
        let mut func = def.func;
        if func == Func::Replace {
            let (form, order) = self.replace_form(args, name_span)?;
            func = form;
            let mut taken: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
            nodes = order
                .iter()
                .map(|&i| taken[i].take().unwrap_or(Node::Const(Value::Null)))
                .collect();
            spans = order.iter().map(|&i| spans[i].clone()).collect();
        }
        let mut prep: Vec<Prep> = (0..nodes.len()).map(|_| Prep::None).collect();
        let n = nodes.len();
        match func {
            Func::FormatDateTime => {
                for i in [n - 2, n - 1] {
                    prep[i] = self.prep_format(def, &nodes[i], &spans[i]);
                }
            }
            Func::DateAdd | Func::DateDiff => prep[0] = self.prep_interval(&nodes[0], &spans[0]),
            Func::ToLower | Func::ToUpper if n == 2 => {
                if let Node::Const(v) = &nodes[1] {
                    let culture = V::borrow(v).text().map(|c| text::is_turkic(&c));
                    prep[1] = Prep::Turkic(culture.unwrap_or(false));
                }
            }
            Func::IsMatch
            | Func::ReplaceRegex
            | Func::RegexReplace
            | Func::RegexReplaceGroup
            | Func::RegexExtract => prep[1] = self.prep_regex(&nodes[1], &spans[1]),
            _ => {}
        }
        let numeric: &[(usize, &str)] = match func {
            Func::Left | Func::Right => &[(1, "numChars")],
            Func::Mid => &[(1, "start"), (2, "length")],
            Func::Word => &[(1, "wordNumber")],
            Func::Item => &[(1, "index")],
            Func::DateAdd => &[(1, "number")],
            Func::InStr => &[(2, "start")],
            _ => &[],
        };
        for &(i, what) in numeric {
            if let Some(Node::Const(v)) = nodes.get(i)
                && V::borrow(v).number().is_none()
            {
                let found = super::value::show(&V::borrow(v));
                self.error(
                    spans[i].clone(),
                    format!("{} expects a number for {what}, found {found}", def.name),
                    Some(format!("usage: {}", def.usage)),
                );
            }
        }
        Some(Node::Call(Box::new(Call {
            func,
            args: nodes.into_boxed_slice(),
            prep: prep.into_boxed_slice(),
            site: u32::try_from(ast.span.start).unwrap_or(u32::MAX),
        })))
    }

    /// Picks which of Entra's `Replace` forms the present arguments select,
    /// and the argument order that form's implementation expects.
    fn replace_form(
        &mut self,
        args: &[Ast],
        name_span: &Range<usize>,
    ) -> Option<(Func, Vec<usize>)> {
        if args.len() == 3 {
            return Some((Func::ReplaceText, vec![0, 1, 2]));
        }
        let p = |i: usize| args.get(i).is_some_and(is_present);
        let (old, re, group, value, attr, template) = (p(1), p(2), p(3), p(4), p(5), p(6));
        let form = match (old, re, group, value, attr, template) {
            (true, false, false, true, false, false) => Some((Func::ReplaceText, vec![0, 1, 4])),
            (true, false, false, false, false, true) => {
                Some((Func::ReplaceTemplate, vec![0, 1, 6]))
            }
            (false, true, false, true, false, false) => Some((Func::RegexReplace, vec![0, 2, 4])),
            (false, true, true, true, false, false) => {
                Some((Func::RegexReplaceGroup, vec![0, 2, 3, 4]))
            }
            (false, true, true, false, true, false) => Some((Func::RegexExtract, vec![0, 2, 3, 5])),
            _ => None,
        };
        if form.is_none() {
            self.error(
                name_span.clone(),
                "unsupported combination of Replace arguments".into(),
                Some(
                    "give oldValue with replacementValue or template, or regexPattern with \
                     replacementValue (optionally regexGroupName), or regexPattern with \
                     regexGroupName and replacementAttributeName; leave the others empty"
                        .into(),
                ),
            );
        }
        form
    }

    fn literal_text(node: &Node) -> Option<Option<&str>> {
        match node {
            Node::Const(Value::Str(s)) => Some(Some(s)),
            Node::Const(_) => Some(None),
            _ => None,
        }
    }

    fn prep_format(&mut self, def: &FnDef, node: &Node, span: &Range<usize>) -> Prep {
        match Self::literal_text(node) {
            Some(Some(fmt)) => match DateFmt::compile(fmt) {
                Ok(f) => Prep::Fmt(Box::new(f)),
                Err(e) => {
                    self.error(span.clone(), e, Some(format!("usage: {}", def.usage)));
                    Prep::None
                }
            },
            Some(None) => {
                self.error(
                    span.clone(),
                    "expected a date format string".into(),
                    Some("e.g. \"yyyy-MM-dd\" or \"yyyyMMddHHmmss.fZ\"".into()),
                );
                Prep::None
            }
            None => Prep::None,
        }
    }

    fn prep_interval(&mut self, node: &Node, span: &Range<usize>) -> Prep {
        match Self::literal_text(node) {
            Some(text) => match text.and_then(Interval::parse) {
                Some(iv) => Prep::Interval(iv),
                None => {
                    self.error(
                        span.clone(),
                        format!("unknown interval {:?}", text.unwrap_or("")),
                        Some(INTERVALS_HELP.into()),
                    );
                    Prep::None
                }
            },
            None => Prep::None,
        }
    }

    fn prep_regex(&mut self, node: &Node, span: &Range<usize>) -> Prep {
        match Self::literal_text(node) {
            Some(Some(pattern)) => match Regex::new(pattern) {
                Ok(r) => Prep::Regex(r),
                Err(e) => {
                    self.error(
                        span.clone(),
                        format!(
                            "invalid regular expression: {}",
                            functions::regex_message(&e)
                        ),
                        Some(
                            "patterns use Rust regex syntax (no look-around or backreferences)"
                                .into(),
                        ),
                    );
                    Prep::None
                }
            },
            _ => Prep::None,
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "argument" } else { "arguments" }
}

fn arity_problem(def: &FnDef, n: usize) -> Option<String> {
    let name = def.name;
    if def.func == Func::Replace {
        return (n != 3 && n != 7).then(|| format!("Replace takes 3 or 7 arguments, found {n}"));
    }
    if def.func == Func::Switch && n >= def.min && n % 2 == 1 {
        return Some(format!(
            "Switch takes a source, a default and key/value pairs, found {n} arguments (a key without a value)"
        ));
    }
    if (def.min..=def.max).contains(&n) {
        return None;
    }
    Some(match (def.min, def.max) {
        (0, 0) => format!("{name} takes no arguments, found {n}"),
        (a, b) if a == b => format!("{name} takes {a} {}, found {n}", plural(a)),
        (a, usize::MAX) => format!("{name} takes at least {a} {}, found {n}", plural(a)),
        (a, b) if b == a + 1 => format!("{name} takes {a} or {b} arguments, found {n}"),
        (a, b) => format!("{name} takes {a} to {b} arguments, found {n}"),
    })
}
