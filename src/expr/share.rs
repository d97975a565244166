//! Common sub-expressions, computed once per evaluation.
//!
//! Rule authors repeat themselves where the language gives them no names:
//! the candidates of a `SelectUniqueValue` are typically one normalised base
//! with different suffixes, written out in full each time. After checking,
//! every sub-expression that occurs more than once (the largest first) is
//! moved into a table and each occurrence becomes a `Node::Shared` slot; an
//! evaluation fills a slot the first time it needs it and reads it after.
//!
//! Only what gives the same value wherever it stands within one evaluation
//! is shared: an expression has no variables, so that is everything but
//! `SelectUniqueValue` (its answer depends on what is taken). `Guid()` calls
//! differ by their place in the source, which `same` compares for them.
//! Short-circuiting stays as it was: a slot is filled only when an operand
//! that needs it is evaluated.

use super::eval::Node;
use super::functions::Func;

/// Whether two trees always evaluate to the same value in one evaluation.
pub(super) fn same(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Const(x), Node::Const(y)) => x == y,
        (Node::Attr(x), Node::Attr(y)) => x == y,
        (Node::Shared(x), Node::Shared(y)) => x == y,
        (Node::Concat(x), Node::Concat(y)) => all_same(x, y),
        (Node::Cmp(o1, l1, r1), Node::Cmp(o2, l2, r2)) => o1 == o2 && same(l1, l2) && same(r1, r2),
        (Node::And(l1, r1), Node::And(l2, r2)) | (Node::Or(l1, r1), Node::Or(l2, r2)) => {
            same(l1, l2) && same(r1, r2)
        }
        (Node::Not(x), Node::Not(y)) => same(x, y),
        // Literal arguments decide a call's preparation, so equal arguments
        // mean an equal call.
        (Node::Call(x), Node::Call(y)) => {
            x.func == y.func
                && (x.func != Func::Guid || x.site == y.site)
                && all_same(&x.args, &y.args)
        }
        _ => false,
    }
}

fn all_same(x: &[Node], y: &[Node]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
}

/// Nodes in the tree, itself included.
fn size(n: &Node) -> usize {
    let mut k = 0;
    n.walk(&mut |_| k += 1);
    k
}

/// Worth a slot: computing it costs more than reading a slot, and it means
/// the same thing wherever it stands.
fn candidate(n: &Node) -> bool {
    if !matches!(n, Node::Call(_) | Node::Concat(_)) {
        return false;
    }
    let mut ok = true;
    n.walk(&mut |m| {
        if let Node::Call(c) = m
            && c.func == Func::SelectUniqueValue
        {
            ok = false;
        }
    });
    ok
}

/// Moves every repeated sub-expression of `root` into the returned table,
/// largest first, leaving `Node::Shared` slots in its place. An entry may
/// use other entries' slots (a smaller repeat inside a larger one), never
/// its own.
pub(super) fn share(mut root: Node) -> (Node, Vec<Node>) {
    let mut table: Vec<Node> = Vec::new();
    loop {
        let Some(body) = largest_repeated(&root, &table) else {
            break;
        };
        let slot = u32::try_from(table.len()).unwrap_or(u32::MAX);
        replace(&mut root, &body, slot);
        for t in &mut table {
            replace(t, &body, slot);
        }
        table.push(body);
    }
    (root, table)
}

/// The largest candidate that occurs at least twice across the root and
/// the table (occurrences inside one another do not count twice).
fn largest_repeated(root: &Node, table: &[Node]) -> Option<Node> {
    let mut found: Vec<(usize, &Node)> = Vec::new();
    let mut all: Vec<&Node> = Vec::new();
    gather(root, &mut all);
    for t in table {
        // A table entry's own root is already a slot: only its inside counts.
        gather_inside(t, &mut all);
    }
    for &n in &all {
        if candidate(n) {
            found.push((size(n), n));
        }
    }
    found.sort_by_key(|&(s, _)| std::cmp::Reverse(s));
    for (i, &(s, n)) in found.iter().enumerate() {
        let twice = found
            .iter()
            .enumerate()
            .any(|(j, &(s2, m))| j != i && s2 == s && same(n, m));
        if twice {
            return Some(n.clone());
        }
    }
    None
}

fn gather<'a>(n: &'a Node, out: &mut Vec<&'a Node>) {
    out.push(n);
    gather_inside(n, out);
}

fn gather_inside<'a>(n: &'a Node, out: &mut Vec<&'a Node>) {
    n.each_child(&mut |c| gather(c, out));
}

/// Replaces every occurrence of `body` in `n` (not looking inside one) with
/// the slot.
fn replace(n: &mut Node, body: &Node, slot: u32) {
    if same(n, body) {
        *n = Node::Shared(slot);
        return;
    }
    n.each_child_mut(&mut |c| replace(c, body, slot));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Value;
    use crate::expr::{
        Expr,
        tests::{compile, ctx, obj},
    };

    /// The same expression with every slot written out again.
    fn inlined(e: &Expr) -> Expr {
        fn inline(n: &mut Node, table: &[Node]) {
            if let Node::Shared(k) = n {
                *n = table[*k as usize].clone();
            }
            n.each_child_mut(&mut |c| inline(c, table));
        }
        let mut plain = e.clone();
        inline(&mut plain.root, &e.shared);
        plain.shared.clear();
        plain
    }

    const CANDIDATES: &str = r#"SelectUniqueValue(
        ToLower(StripSpaces(NormalizeDiacritics(Left(givenName, 1) & sn))),
        ToLower(StripSpaces(NormalizeDiacritics(givenName & "." & sn))),
        ToLower(StripSpaces(NormalizeDiacritics(givenName & "." & sn))) & "2",
        ToLower(StripSpaces(NormalizeDiacritics(givenName & "." & sn))) & "." & Mid(mail, 2, 9))"#;

    #[test]
    fn a_repeated_base_becomes_one_slot_and_the_candidates_stay_the_same() {
        let e = compile(CANDIDATES);
        assert_eq!(e.shared.len(), 1, "{:?}", e.shared);
        assert!(matches!(&e.shared[0], Node::Call(c) if c.func == Func::ToLower));
        let plain = inlined(&e);
        for o in [
            obj(&[
                ("givenName", &["Zoë"]),
                ("sn", &["Van Dijk"]),
                ("mail", &["W100042"]),
            ]),
            obj(&[("sn", &["Ng"]), ("mail", &["W1"])]),
            obj(&[]),
        ] {
            let got = e.unique_candidates(&o, &ctx(), None);
            assert!(got.is_some());
            assert_eq!(got, plain.unique_candidates(&o, &ctx(), None));
        }
        let o = obj(&[
            ("givenName", &["Zoë"]),
            ("sn", &["Van Dijk"]),
            ("mail", &["W100042"]),
        ]);
        assert_eq!(
            e.unique_candidates(&o, &ctx(), None).unwrap().values,
            [
                "zvandijk",
                "zoe.vandijk",
                "zoe.vandijk2",
                "zoe.vandijk.100042"
            ]
        );
    }

    #[test]
    fn slots_nest_and_agree_with_the_written_out_expression() {
        for src in [
            // A smaller repeat inside a larger one, and on its own.
            r#"(Left(givenName, 2) & Left(sn, 2)) & "-" & (Left(givenName, 2) & Left(sn, 2)) & Left(givenName, 2)"#,
            // Under a branch not taken, and in the one taken.
            r#"IIf(IsNull(givenName), ToUpper(sn) & ToUpper(sn), ToUpper(givenName) & ToUpper(givenName))"#,
            r#"ToUpper(givenName) = ToUpper(sn) or ToUpper(givenName) = "ANN""#,
            r#"Coalesce(Trim(givenName), Trim(sn)) & "/" & Coalesce(Trim(givenName), Trim(sn))"#,
        ] {
            let e = compile(src);
            assert!(!e.shared.is_empty(), "{src}: nothing shared");
            let plain = inlined(&e);
            for o in [
                obj(&[("givenName", &["Ann"]), ("sn", &["Lee"]), ("mail", &["W2"])]),
                obj(&[("sn", &["Lee"])]),
                obj(&[("givenName", &["ann"]), ("sn", &["ANN"])]),
            ] {
                let got = e.eval(&o, &ctx()).map_err(|e| e.message);
                let want = plain.eval(&o, &ctx()).map_err(|e| e.message);
                assert_eq!(got, want, "{src}");
            }
        }
    }

    #[test]
    fn an_error_in_a_slot_is_the_error_of_the_expression() {
        let e = compile(r#"CDate(givenName) & "/" & CDate(givenName)"#);
        assert_eq!(e.shared.len(), 1);
        let o = obj(&[("givenName", &["not a date"])]);
        let got = e.eval(&o, &ctx()).map_err(|e| e.message);
        let want = inlined(&e).eval(&o, &ctx()).map_err(|e| e.message);
        assert!(got.is_err());
        assert_eq!(got, want);
    }

    #[test]
    fn guids_at_different_places_and_unique_choices_are_never_shared() {
        let e = compile(r#"Guid() & "|" & Guid()"#);
        assert!(e.shared.is_empty());
        let Ok(Value::Str(v)) = e.eval(&obj(&[]), &ctx()) else {
            panic!("not text");
        };
        let (a, b) = v.split_once('|').unwrap();
        assert_ne!(a, b);
        let e = compile(
            r#"SelectUniqueValue(ToUpper(givenName), ToUpper(sn)) & SelectUniqueValue(ToUpper(givenName), ToUpper(sn))"#,
        );
        for t in &e.shared {
            let mut unique = false;
            t.walk(&mut |n| {
                unique |= matches!(n, Node::Call(c) if c.func == Func::SelectUniqueValue)
            });
            assert!(!unique, "{t:?}");
        }
        // Its candidates share what is inside it.
        assert!(!e.shared.is_empty());
    }
}
