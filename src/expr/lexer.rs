//! Turns expression source into tokens with byte spans. It owns the surface
//! syntax of literals and names (string escapes, `[bracketed names]`, numbers,
//! case-insensitive keywords), so the parser only sees structure. Lexing never
//! stops at the first bad character: every problem is reported and replaced
//! by an `Error` token the parser treats as already reported.

use super::ExprError;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A bare name: an attribute, or a function when `(` follows.
    Ident(String),
    /// `[Some Name]`, always an attribute.
    Bracket(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    Comma,
    Amp,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Not,
    True,
    False,
    Null,
    /// Something the lexer already reported.
    Error,
    Eof,
}

impl Tok {
    /// How a token is named in "expected X, found Y" messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(n) => format!("name `{n}`"),
            Tok::Bracket(n) => format!("attribute `[{n}]`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Num(n) => format!("number {n}"),
            Tok::LParen => "\"(\"".into(),
            Tok::RParen => "\")\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Amp => "\"&\"".into(),
            Tok::Eq => "\"=\"".into(),
            Tok::Ne => "\"<>\"".into(),
            Tok::Lt => "\"<\"".into(),
            Tok::Le => "\"<=\"".into(),
            Tok::Gt => "\">\"".into(),
            Tok::Ge => "\">=\"".into(),
            Tok::And => "`and`".into(),
            Tok::Or => "`or`".into(),
            Tok::Not => "`not`".into(),
            Tok::True => "`true`".into(),
            Tok::False => "`false`".into(),
            Tok::Null => "`null`".into(),
            Tok::Error => "invalid token".into(),
            Tok::Eof => "end of expression".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    pub span: Range<usize>,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

/// Hyphens and dots are allowed inside names because directory attribute
/// names use them (`msDS-cloudExtensionAttribute1`) and the language has no
/// subtraction or member access they could be confused with.
fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.'
}

pub(super) fn lex(src: &str, errors: &mut Vec<ExprError>) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let single = |tok: Tok| Token {
            tok,
            span: start..start + c.len_utf8(),
        };
        match c {
            '(' | ')' | ',' | '&' | '=' => {
                chars.next();
                out.push(single(match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    '&' => Tok::Amp,
                    _ => Tok::Eq,
                }));
            }
            '<' | '>' | '!' => {
                chars.next();
                let next = chars.peek().map(|&(_, n)| n);
                let (tok, len) = match (c, next) {
                    ('<', Some('>')) => (Tok::Ne, 2),
                    ('<', Some('=')) => (Tok::Le, 2),
                    ('<', _) => (Tok::Lt, 1),
                    ('>', Some('=')) => (Tok::Ge, 2),
                    ('>', _) => (Tok::Gt, 1),
                    ('!', Some('=')) => (Tok::Ne, 2),
                    _ => {
                        errors.push(ExprError {
                            span: start..start + 1,
                            message: "unexpected character '!'".into(),
                            help: Some("use `not` for negation and `<>` for \"not equal\"".into()),
                        });
                        (Tok::Error, 1)
                    }
                };
                if len == 2 {
                    chars.next();
                }
                out.push(Token {
                    tok,
                    span: start..start + len,
                });
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                let mut end = None;
                while let Some((i, ch)) = chars.next() {
                    match ch {
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        // Only `\"` and `\\` are escapes; any other backslash is
                        // kept so regex patterns like "\d+" read as written.
                        '\\' => match chars.peek() {
                            Some(&(_, q @ ('"' | '\\'))) => {
                                text.push(q);
                                chars.next();
                            }
                            _ => text.push('\\'),
                        },
                        _ => text.push(ch),
                    }
                }
                match end {
                    Some(end) => out.push(Token {
                        tok: Tok::Str(text),
                        span: start..end,
                    }),
                    None => {
                        errors.push(ExprError {
                            span: start..start + 1,
                            message: "unterminated string".into(),
                            help: Some(
                                "close the string with `\"`; write `\\\"` for a quote inside it"
                                    .into(),
                            ),
                        });
                        out.push(Token {
                            tok: Tok::Error,
                            span: start..src.len(),
                        });
                    }
                }
            }
            '[' => {
                chars.next();
                let mut end = None;
                for (i, ch) in chars.by_ref() {
                    if ch == ']' {
                        end = Some(i);
                        break;
                    }
                }
                match end {
                    Some(end) => {
                        let name = src[start + 1..end].trim();
                        if name.is_empty() {
                            errors.push(ExprError {
                                span: start..end + 1,
                                message: "empty attribute name".into(),
                                help: Some(
                                    "write the attribute's name between the brackets".into(),
                                ),
                            });
                            out.push(Token {
                                tok: Tok::Error,
                                span: start..end + 1,
                            });
                        } else {
                            out.push(Token {
                                tok: Tok::Bracket(name.to_string()),
                                span: start..end + 1,
                            });
                        }
                    }
                    None => {
                        errors.push(ExprError {
                            span: start..start + 1,
                            message: "unterminated attribute name".into(),
                            help: Some("close the name with `]`".into()),
                        });
                        out.push(Token {
                            tok: Tok::Error,
                            span: start..src.len(),
                        });
                    }
                }
            }
            c if c.is_ascii_digit() || (c == '-' && next_is_digit(src, start + 1)) => {
                chars.next();
                let mut end = start + 1;
                let mut seen_dot = false;
                while let Some(&(i, ch)) = chars.peek() {
                    let fraction = ch == '.' && !seen_dot && next_is_digit(src, i + 1);
                    if !(ch.is_ascii_digit() || fraction) {
                        break;
                    }
                    seen_dot |= fraction;
                    chars.next();
                    end = i + 1;
                }
                let text = &src[start..end];
                match text.parse::<f64>() {
                    Ok(n) => out.push(Token {
                        tok: Tok::Num(n),
                        span: start..end,
                    }),
                    Err(_) => {
                        errors.push(ExprError {
                            span: start..end,
                            message: format!("invalid number {text:?}"),
                            help: None,
                        });
                        out.push(Token {
                            tok: Tok::Error,
                            span: start..end,
                        });
                    }
                }
            }
            c if is_ident_start(c) => {
                chars.next();
                let mut end = start + c.len_utf8();
                while let Some(&(i, ch)) = chars.peek() {
                    if !is_ident_continue(ch) {
                        break;
                    }
                    chars.next();
                    end = i + ch.len_utf8();
                }
                let word = &src[start..end];
                let tok = match word.to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "true" => Tok::True,
                    "false" => Tok::False,
                    "null" => Tok::Null,
                    _ => Tok::Ident(word.to_string()),
                };
                out.push(Token {
                    tok,
                    span: start..end,
                });
            }
            _ => {
                chars.next();
                let help = match c {
                    '+' => Some("use `&` to join strings".to_string()),
                    '\'' => Some("strings use double quotes: \"text\"".to_string()),
                    '\u{201c}' | '\u{201d}' => {
                        Some("use straight double quotes `\"`, not typographic ones".to_string())
                    }
                    '|' => Some("use `or`".to_string()),
                    _ => None,
                };
                errors.push(ExprError {
                    span: start..start + c.len_utf8(),
                    message: format!("unexpected character {c:?}"),
                    help,
                });
                out.push(single(Tok::Error));
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        span: src.len()..src.len(),
    });
    out
}

fn next_is_digit(src: &str, at: usize) -> bool {
    src.as_bytes().get(at).is_some_and(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        let mut errors = Vec::new();
        let out = lex(src, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        out.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_names_literals_and_operators() {
        assert_eq!(
            toks(r#"[Legal First Name] & "a\"b\\c\d" <> -1.5 AND not x-y.z"#),
            vec![
                Tok::Bracket("Legal First Name".into()),
                Tok::Amp,
                Tok::Str("a\"b\\c\\d".into()),
                Tok::Ne,
                Tok::Num(-1.5),
                Tok::And,
                Tok::Not,
                Tok::Ident("x-y.z".into()),
                Tok::Eof,
            ]
        );
        assert_eq!(
            toks("a<=b>=c<d>e!=f"),
            vec![
                Tok::Ident("a".into()),
                Tok::Le,
                Tok::Ident("b".into()),
                Tok::Ge,
                Tok::Ident("c".into()),
                Tok::Lt,
                Tok::Ident("d".into()),
                Tok::Gt,
                Tok::Ident("e".into()),
                Tok::Ne,
                Tok::Ident("f".into()),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn spans_are_byte_ranges() {
        let mut errors = Vec::new();
        let out = lex("é & [ñ]", &mut errors);
        assert_eq!(out[0].span, 0..2);
        assert_eq!(out[1].span, 3..4);
        assert_eq!(out[2].span, 5..9);
    }

    #[test]
    fn reports_every_bad_character() {
        let mut errors = Vec::new();
        lex("a + 'b' ", &mut errors);
        let msgs: Vec<_> = errors
            .iter()
            .map(|e| (e.span.clone(), e.message.as_str()))
            .collect();
        assert_eq!(
            msgs,
            vec![
                (2..3, "unexpected character '+'"),
                (4..5, "unexpected character '\\''"),
                (6..7, "unexpected character '\\''"),
            ]
        );
    }
}
