//! Recursive-descent parser from tokens to an unresolved syntax tree with a
//! span on every node. Names are not resolved here (that is `check`'s job),
//! so the parser can keep going after an error: it reports it, stays quiet
//! until it reaches a `,` or `)` that ends the broken argument, and carries on,
//! which lets one compile report every independent mistake.
//!
//! Precedence, loosest first: `or`, `and`, `not`, comparison, `&`.

use super::ExprError;
use super::lexer::{Tok, Token};
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
pub(super) struct Ast {
    pub kind: AstKind,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub(super) enum AstKind {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Attr(String),
    Call {
        name: String,
        name_span: Range<usize>,
        args: Vec<Ast>,
        /// A syntax error inside the argument list was reported, so the
        /// argument count is unreliable and not worth a second message.
        damaged: bool,
    },
    /// An argument left empty between commas, as Entra writes
    /// `FormatDateTime([x], , "yyyyMMdd", "yyyy-MM-dd")`.
    Missing,
    Not(Box<Ast>),
    And(Box<Ast>, Box<Ast>),
    Or(Box<Ast>, Box<Ast>),
    Cmp(CmpOp, Box<Ast>, Box<Ast>),
    Concat(Vec<Ast>),
    /// Where a reported error was; checking skips it.
    Error,
}

struct Parser<'e> {
    toks: Vec<Token>,
    pos: usize,
    errors: &'e mut Vec<ExprError>,
    /// Set after an error until the parser resynchronises, so one mistake
    /// does not produce a cascade of follow-on messages.
    quiet: bool,
    /// Errors seen so far, reported or not; tells a call it was damaged.
    faults: usize,
}

pub(super) fn parse(toks: Vec<Token>, errors: &mut Vec<ExprError>) -> Ast {
    // A lexer error already explains the damage; parse errors at the end of
    // input after it would only repeat it.
    let lexed_ok = errors.is_empty();
    let mut p = Parser {
        toks,
        pos: 0,
        errors,
        quiet: false,
        faults: 0,
    };
    if p.peek() == &Tok::Eof {
        let span = p.span();
        p.error(span, "empty expression".into(), None);
        return Ast {
            kind: AstKind::Error,
            span: 0..0,
        };
    }
    let ast = p.expr();
    if p.peek() != &Tok::Eof && (lexed_ok || p.peek() != &Tok::Error) {
        let span = p.span();
        let found = p.peek().describe();
        let help = match (&ast.kind, p.peek()) {
            (AstKind::Cmp(..), Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge) => {
                Some("comparisons cannot be chained; combine them with `and`".to_string())
            }
            (_, Tok::RParen) => Some("this `)` has no matching `(`".to_string()),
            _ => Some("join values with `&`, conditions with `and`/`or`".to_string()),
        };
        p.error(
            span,
            format!("unexpected {found} after a complete expression"),
            help,
        );
    }
    ast
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> &Tok {
        self.toks.get(self.pos + n).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn span(&self) -> Range<usize> {
        match self.toks.get(self.pos) {
            Some(t) => t.span.clone(),
            None => self.toks.last().map_or(0..0, |t| t.span.clone()),
        }
    }

    fn bump(&mut self) -> Token {
        let t = self.toks.get(self.pos).cloned().unwrap_or_else(|| Token {
            tok: Tok::Eof,
            span: self.span(),
        });
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        self.faults += 1;
        if !self.quiet {
            self.errors.push(ExprError {
                span,
                message,
                help,
            });
        }
        self.quiet = true;
    }

    fn expr(&mut self) -> Ast {
        self.or()
    }

    fn or(&mut self) -> Ast {
        let mut lhs = self.and();
        while self.peek() == &Tok::Or {
            self.bump();
            let rhs = self.and();
            let span = lhs.span.start..rhs.span.end;
            lhs = Ast {
                kind: AstKind::Or(Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        lhs
    }

    fn and(&mut self) -> Ast {
        let mut lhs = self.not();
        while self.peek() == &Tok::And {
            self.bump();
            let rhs = self.not();
            let span = lhs.span.start..rhs.span.end;
            lhs = Ast {
                kind: AstKind::And(Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        lhs
    }

    fn not(&mut self) -> Ast {
        // `not(` is the Entra function `Not(...)`, parsed as a call so that
        // its arity is checked like any other function's.
        if self.peek() == &Tok::Not && self.peek_at(1) != &Tok::LParen {
            let start = self.bump().span.start;
            let inner = self.not();
            let span = start..inner.span.end;
            return Ast {
                kind: AstKind::Not(Box::new(inner)),
                span,
            };
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Ast {
        let lhs = self.concat();
        let op = match self.peek() {
            Tok::Eq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            _ => return lhs,
        };
        self.bump();
        let rhs = self.concat();
        let span = lhs.span.start..rhs.span.end;
        Ast {
            kind: AstKind::Cmp(op, Box::new(lhs), Box::new(rhs)),
            span,
        }
    }

    fn concat(&mut self) -> Ast {
        let first = self.primary();
        if self.peek() != &Tok::Amp {
            return first;
        }
        let mut parts = vec![first];
        while self.peek() == &Tok::Amp {
            self.bump();
            parts.push(self.primary());
        }
        let span = parts[0].span.start..parts[parts.len() - 1].span.end;
        Ast {
            kind: AstKind::Concat(parts),
            span,
        }
    }

    fn primary(&mut self) -> Ast {
        let t = self.bump();
        let kind = match t.tok {
            Tok::Str(s) => AstKind::Str(s),
            Tok::Num(n) => AstKind::Num(n),
            Tok::True => AstKind::Bool(true),
            Tok::False => AstKind::Bool(false),
            Tok::Null => AstKind::Null,
            Tok::Bracket(name) => AstKind::Attr(name),
            Tok::Ident(name) if self.peek() == &Tok::LParen => {
                return self.call(name, t.span);
            }
            Tok::Not => return self.call("Not".into(), t.span),
            Tok::Ident(name) => AstKind::Attr(name),
            Tok::LParen => {
                let inner = self.expr();
                if self.peek() == &Tok::RParen {
                    let end = self.bump().span.end;
                    return Ast {
                        kind: inner.kind,
                        span: t.span.start..end,
                    };
                }
                self.expected("\")\" to close this parenthesis");
                return Ast {
                    kind: AstKind::Error,
                    span: t.span.start..inner.span.end,
                };
            }
            Tok::Error => {
                // Already reported by the lexer.
                self.quiet = true;
                self.faults += 1;
                AstKind::Error
            }
            other => {
                // Leave a closing token for the caller to resynchronise on.
                if matches!(other, Tok::RParen | Tok::Comma | Tok::Eof) {
                    self.pos = self.pos.saturating_sub(1);
                }
                let help = match other {
                    Tok::Amp => Some("`&` needs a value on both sides".to_string()),
                    Tok::Comma | Tok::RParen => Some("an argument is missing here".to_string()),
                    _ => None,
                };
                self.error(
                    t.span.clone(),
                    format!("expected a value, found {}", other.describe()),
                    help,
                );
                AstKind::Error
            }
        };
        Ast { kind, span: t.span }
    }

    fn expected(&mut self, what: &str) {
        let span = self.span();
        let found = self.peek().describe();
        self.error(span, format!("expected {what}, found {found}"), None);
    }

    fn call(&mut self, name: String, name_span: Range<usize>) -> Ast {
        let open = self.bump(); // the `(`
        let faults = self.faults;
        let mut args = Vec::new();
        let mut end = open.span.end;
        if self.peek() == &Tok::RParen {
            end = self.bump().span.end;
            return Ast {
                kind: AstKind::Call {
                    name,
                    name_span: name_span.clone(),
                    args,
                    damaged: false,
                },
                span: name_span.start..end,
            };
        }
        loop {
            // An empty argument between two commas, or before the `)` after a
            // comma, is an omitted optional argument.
            if matches!(self.peek(), Tok::Comma)
                || (matches!(self.peek(), Tok::RParen) && !args.is_empty())
            {
                let at = self.span().start;
                args.push(Ast {
                    kind: AstKind::Missing,
                    span: at..at,
                });
            } else {
                args.push(self.expr());
            }
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                    self.quiet = false;
                }
                Tok::RParen => {
                    end = self.bump().span.end;
                    self.quiet = false;
                    break;
                }
                Tok::Eof => {
                    let help = Some(format!("close the call to {name} with `)`"));
                    let span = self.span();
                    self.error(
                        span,
                        format!("expected \",\" or \")\", found {}", Tok::Eof.describe()),
                        help,
                    );
                    break;
                }
                _ => {
                    self.expected("\",\" or \")\"");
                    self.skip_to_comma_or_close();
                    if self.peek() == &Tok::Eof {
                        break;
                    }
                }
            }
        }
        Ast {
            kind: AstKind::Call {
                name,
                name_span: name_span.clone(),
                args,
                damaged: self.faults > faults,
            },
            span: name_span.start..end,
        }
    }

    /// Skips a broken argument up to the `,` or `)` at this nesting level.
    fn skip_to_comma_or_close(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.peek() {
                Tok::Eof => return,
                Tok::LParen => depth += 1,
                Tok::RParen if depth == 0 => return,
                Tok::RParen => depth -= 1,
                Tok::Comma if depth == 0 => return,
                _ => {}
            }
            self.bump();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::lexer::lex;

    fn show(a: &Ast) -> String {
        match &a.kind {
            AstKind::Str(s) => format!("{s:?}"),
            AstKind::Num(n) => n.to_string(),
            AstKind::Bool(b) => b.to_string(),
            AstKind::Null => "null".into(),
            AstKind::Attr(n) => format!("[{n}]"),
            AstKind::Call { name, args, .. } => {
                let args: Vec<_> = args.iter().map(show).collect();
                format!("{name}({})", args.join(", "))
            }
            AstKind::Missing => "_".into(),
            AstKind::Not(x) => format!("(not {})", show(x)),
            AstKind::And(l, r) => format!("({} and {})", show(l), show(r)),
            AstKind::Or(l, r) => format!("({} or {})", show(l), show(r)),
            AstKind::Cmp(op, l, r) => format!("({} {op:?} {})", show(l), show(r)),
            AstKind::Concat(parts) => {
                let parts: Vec<_> = parts.iter().map(show).collect();
                format!("({})", parts.join(" & "))
            }
            AstKind::Error => "!".into(),
        }
    }

    fn parse_ok(src: &str) -> String {
        let mut errors = Vec::new();
        let toks = lex(src, &mut errors);
        let ast = parse(toks, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        show(&ast)
    }

    fn parse_errs(src: &str) -> Vec<(Range<usize>, String)> {
        let mut errors = Vec::new();
        let toks = lex(src, &mut errors);
        parse(toks, &mut errors);
        errors.into_iter().map(|e| (e.span, e.message)).collect()
    }

    #[test]
    fn precedence_or_and_not_cmp_concat() {
        assert_eq!(
            parse_ok(r#"a or b and not c = "x" & d"#),
            r#"([a] or ([b] and (not ([c] Eq ("x" & [d])))))"#
        );
        assert_eq!(parse_ok("(a or b) and c"), "(([a] or [b]) and [c])");
        assert_eq!(parse_ok("not(a) and b"), "(Not([a]) and [b])");
        assert_eq!(parse_ok("NOT a OR b"), "((not [a]) or [b])");
    }

    #[test]
    fn calls_and_missing_arguments() {
        assert_eq!(
            parse_ok(r#"FormatDateTime([x], , "a", "b")"#),
            r#"FormatDateTime([x], _, "a", "b")"#
        );
        assert_eq!(parse_ok("Now()"), "Now()");
        assert_eq!(parse_ok("f(a, )"), "f([a], _)");
    }

    #[test]
    fn recovers_to_report_independent_errors() {
        assert_eq!(
            parse_errs("Join(\",\", a b, & c, d)"),
            vec![
                (
                    12..13,
                    "expected \",\" or \")\", found name `b`".to_string()
                ),
                (15..16, "expected a value, found \"&\"".to_string()),
            ]
        );
        assert_eq!(
            parse_errs("a = b = c"),
            vec![(
                6..7,
                "unexpected \"=\" after a complete expression".to_string()
            )]
        );
        assert_eq!(parse_errs("").len(), 1);
        assert_eq!(
            parse_errs("Left(a, 1"),
            vec![(
                9..9,
                "expected \",\" or \")\", found end of expression".to_string()
            )]
        );
    }
}
