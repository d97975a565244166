//! The compiled form of an expression (`Node`) and its tree-walking
//! evaluator: attribute reads, `&`, comparisons and boolean logic. Function
//! calls are dispatched to `functions`. Attribute indexes, regexes and date
//! formats are all resolved before evaluation, so evaluating is a walk over a
//! small tree whose strings borrow from the input wherever possible.

use super::datefmt::{DateFmt, Interval};
use super::functions::{self, Func};
use super::parser::CmpOp;
use super::value::{V, parse_bool, show};
use super::{Context, EvalError, Input, Value};
use regex::Regex;
use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::Ordering;

#[derive(Debug, Clone)]
pub(super) enum Node {
    Const(Value),
    Attr(u32),
    Concat(Box<[Node]>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Call(Box<Call>),
    /// A sub-expression that occurs more than once: its slot in the
    /// expression's table (see `share`).
    Shared(u32),
}

#[derive(Debug, Clone)]
pub(super) struct Call {
    pub func: Func,
    pub args: Box<[Node]>,
    /// Per argument: its compile-time preparation, when it was a literal.
    pub prep: Box<[Prep]>,
    /// Byte offset of the call in the source; distinguishes two `Guid()`
    /// calls in one expression.
    pub site: u32,
}

/// A literal argument turned into what the function really needs, once.
#[derive(Debug, Clone)]
pub(super) enum Prep {
    None,
    Regex(Regex),
    Fmt(Box<DateFmt>),
    Interval(Interval),
    Turkic(bool),
}

impl Node {
    pub fn is_const(&self) -> bool {
        matches!(self, Node::Const(_))
    }

    /// Visits this node and every node below it.
    pub fn walk(&self, f: &mut dyn FnMut(&Node)) {
        f(self);
        self.each_child(&mut |c| c.walk(f));
    }

    /// Visits the nodes directly below this one, in source order.
    pub fn each_child<'a>(&'a self, f: &mut dyn FnMut(&'a Node)) {
        match self {
            Node::Const(_) | Node::Attr(_) | Node::Shared(_) => {}
            Node::Concat(parts) => parts.iter().for_each(f),
            Node::Cmp(_, l, r) | Node::And(l, r) | Node::Or(l, r) => {
                f(l);
                f(r);
            }
            Node::Not(x) => f(x),
            Node::Call(c) => c.args.iter().for_each(f),
        }
    }

    /// The same, to rewrite them.
    pub fn each_child_mut(&mut self, f: &mut dyn FnMut(&mut Node)) {
        match self {
            Node::Const(_) | Node::Attr(_) | Node::Shared(_) => {}
            Node::Concat(parts) => parts.iter_mut().for_each(f),
            Node::Cmp(_, l, r) | Node::And(l, r) | Node::Or(l, r) => {
                f(l);
                f(r);
            }
            Node::Not(x) => f(x),
            Node::Call(c) => c.args.iter_mut().for_each(f),
        }
    }
}

pub(super) struct Env<'a> {
    pub input: &'a dyn Input,
    pub ctx: &'a Context<'a>,
    pub source: &'a str,
    /// The expression's shared sub-expressions, and their values once
    /// this evaluation computed them.
    pub shared: &'a [Node],
    pub memo: RefCell<Vec<Option<V<'a>>>>,
}

impl<'a> Env<'a> {
    pub fn new(
        input: &'a dyn Input,
        ctx: &'a Context<'a>,
        source: &'a str,
        shared: &'a [Node],
    ) -> Env<'a> {
        Env {
            input,
            ctx,
            source,
            shared,
            memo: RefCell::new(if shared.is_empty() {
                Vec::new()
            } else {
                vec![None; shared.len()]
            }),
        }
    }
}

pub(super) fn read_attr(input: &dyn Input, attr: u32) -> V<'_> {
    match input.count(attr) {
        0 => V::Null,
        1 => input
            .nth(attr, 0)
            .map_or(V::Null, |s| V::Str(Cow::Borrowed(s))),
        n => V::List(
            (0..n)
                .filter_map(|i| input.nth(attr, i))
                .map(|s| V::Str(Cow::Borrowed(s)))
                .collect(),
        ),
    }
}

pub(super) fn eval<'a>(node: &'a Node, env: &Env<'a>) -> Result<V<'a>, EvalError> {
    match node {
        Node::Const(v) => Ok(V::borrow(v)),
        Node::Attr(a) => Ok(read_attr(env.input, *a)),
        Node::Concat(parts) => concat(parts, env),
        Node::Cmp(op, l, r) => {
            let l = eval(l, env)?;
            let r = eval(r, env)?;
            Ok(V::Bool(compare(*op, &l, &r)))
        }
        Node::And(l, r) => Ok(V::Bool(
            truth("and", &eval(l, env)?)? && truth("and", &eval(r, env)?)?,
        )),
        Node::Or(l, r) => Ok(V::Bool(
            truth("or", &eval(l, env)?)? || truth("or", &eval(r, env)?)?,
        )),
        Node::Not(x) => Ok(V::Bool(!truth("not", &eval(x, env)?)?)),
        Node::Call(c) => functions::call(c, env),
        Node::Shared(k) => {
            let k = *k as usize;
            if let Some(Some(v)) = env.memo.borrow().get(k) {
                return Ok(v.clone());
            }
            // No borrow is held while the body runs: it may fill other slots.
            let Some(body) = env.shared.get(k) else {
                return Ok(V::Null);
            };
            let v = eval(body, env)?;
            if let Some(slot) = env.memo.borrow_mut().get_mut(k) {
                *slot = Some(v.clone());
            }
            Ok(v)
        }
    }
}

/// `&`: null counts as the empty string. A multi-valued operand makes the
/// result multi-valued, one item per value ("smtp:" & [mail]); two
/// multi-valued operands cannot be paired and are an error.
fn concat<'a>(parts: &'a [Node], env: &Env<'a>) -> Result<V<'a>, EvalError> {
    let mut vals = Vec::with_capacity(parts.len());
    let mut list_at = None;
    for (i, p) in parts.iter().enumerate() {
        let v = eval(p, env)?;
        if let V::List(items) = &v
            && items.len() != 1
        {
            if list_at.is_some() {
                return Err(EvalError {
                    message: "&: cannot join two multi-valued values; use Join() to flatten one"
                        .into(),
                });
            }
            list_at = Some(i);
        }
        vals.push(v);
    }
    let build = |vals: &[V], item: Option<&V>| {
        let mut out = String::new();
        for (i, v) in vals.iter().enumerate() {
            let v = if Some(i) == list_at {
                item.unwrap_or(&V::Null)
            } else {
                v
            };
            if let Some(t) = v.text() {
                out.push_str(&t);
            }
        }
        V::str(out)
    };
    match list_at {
        None => Ok(build(&vals, None)),
        Some(i) => {
            let items = match std::mem::replace(&mut vals[i], V::Null) {
                V::List(items) => items,
                _ => Vec::new(),
            };
            Ok(V::List(
                items.iter().map(|it| build(&vals, Some(it))).collect(),
            ))
        }
    }
}

/// Truth of a condition: booleans, `true`/`false`/`yes`/`no`/`1`/`0` text
/// in any case, numbers (non-zero is true); null and empty are false.
pub(super) fn truth(what: &str, v: &V) -> Result<bool, EvalError> {
    match v {
        V::Bool(b) => Ok(*b),
        V::Num(n) => Ok(*n != 0.0),
        v if v.is_null() => Ok(false),
        V::Str(s) => parse_bool(s).ok_or_else(|| EvalError {
            message: format!("{what}: {} is not true or false", show(v)),
        }),
        V::List(items) if items.len() == 1 => truth(what, &items[0]),
        _ => Err(EvalError {
            message: format!("{what}: {} is not true or false", show(v)),
        }),
    }
}

/// Comparison. Null equals only null (and the empty string); an ordering
/// against null is false. With a multi-valued side, `=` and the orderings
/// hold if any value satisfies them, and `<>` is the negation of `=`.
pub(super) fn compare(op: CmpOp, l: &V, r: &V) -> bool {
    if op == CmpOp::Ne {
        return !compare(CmpOp::Eq, l, r);
    }
    if let V::List(items) = l
        && items.len() != 1
    {
        return items.iter().any(|x| compare(op, x, r));
    }
    if let V::List(items) = r
        && items.len() != 1
    {
        return items.iter().any(|x| compare(op, l, x));
    }
    match (l.is_null(), r.is_null()) {
        (true, true) => return op == CmpOp::Eq,
        (true, false) | (false, true) => return false,
        _ => {}
    }
    let Some(ord) = order(l, r) else {
        return false;
    };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

/// Numbers if both sides read as numbers, else dates if both read as
/// dates, else booleans if one side is a boolean and the other reads as one,
/// else the text, compared ordinally (case-sensitive).
fn order(l: &V, r: &V) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (l.number(), r.number()) {
        return a.partial_cmp(&b);
    }
    if let (Some(a), Some(b)) = (l.date(), r.date()) {
        return Some(a.cmp(&b));
    }
    let as_bool = |v: &V| match v {
        V::Bool(b) => Some(*b),
        other => other.text().and_then(|t| parse_bool(&t)),
    };
    if matches!(l, V::Bool(_)) || matches!(r, V::Bool(_)) {
        return Some(as_bool(l)?.cmp(&as_bool(r)?));
    }
    Some(l.text()?.cmp(&r.text()?))
}
