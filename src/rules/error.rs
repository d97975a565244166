//! Rule errors with a place and a way out. Every error names the file, line
//! and column; [`RuleError::render`] adds the source line with a caret. The
//! loader collects all of them before anything runs.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Characters to underline (at least 1).
    pub width: usize,
    pub message: String,
    pub help: Option<String>,
    /// The source line, for rendering.
    pub source_line: String,
}

impl RuleError {
    pub fn at(file: &SourceFile, span: Range<usize>, message: impl Into<String>) -> RuleError {
        let (line, column, source_line) = file.locate(span.start);
        let width = file
            .text
            .get(span.clone())
            .map(|s| s.chars().take_while(|&c| c != '\n').count())
            .unwrap_or(1);
        RuleError {
            file: file.path.clone(),
            line,
            column,
            width: width.max(1),
            message: message.into(),
            help: None,
            source_line,
        }
    }

    /// An error about the file as a whole (unreadable, wrong kind).
    pub fn file(path: &Path, message: impl Into<String>) -> RuleError {
        RuleError {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            width: 1,
            message: message.into(),
            help: None,
            source_line: String::new(),
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> RuleError {
        self.help = Some(help.into());
        self
    }

    pub fn with_help(mut self, help: Option<String>) -> RuleError {
        self.help = help;
        self
    }

    /// The error with the offending line and a caret under the culprit.
    pub fn render(&self) -> String {
        let mut out = format!("error: {self}\n");
        if !self.source_line.is_empty() {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            out.push_str(&format!("{pad} |\n{num} | {}\n", self.source_line));
            out.push_str(&format!(
                "{pad} | {}{}",
                " ".repeat(self.column.saturating_sub(1)),
                "^".repeat(self.width)
            ));
            if let Some(h) = &self.help {
                out.push_str(&format!(" {h}"));
            }
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(h) = &self.help {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// Every error found in a rule set.
#[derive(Debug, Clone, Default)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        write!(f, "{} error(s) in rule files", self.0.len())
    }
}

impl std::error::Error for RuleErrors {}

/// A rule file's text, for turning byte offsets into lines and columns.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// As shown to the user (relative to where idsync was started when possible).
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    /// (line, column, line text) of a byte offset.
    pub fn locate(&self, offset: usize) -> (usize, usize, String) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        let line_end = self.text[line_start..]
            .find('\n')
            .map(|i| line_start + i)
            .unwrap_or(self.text.len());
        (
            line,
            column,
            self.text[line_start..line_end]
                .trim_end_matches('\r')
                .to_string(),
        )
    }

    /// Maps an offset inside a TOML string's decoded content to an offset in
    /// the file, so an expression error points into the rule file itself.
    /// `value_span` is the span of the whole string token, quotes included.
    pub fn offset_in_string(&self, value_span: &Range<usize>, inner: usize) -> usize {
        let Some(raw) = self.text.get(value_span.clone()) else {
            return value_span.start;
        };
        let (open, literal) = if raw.starts_with("\"\"\"") {
            (3, false)
        } else if raw.starts_with("'''") {
            (3, true)
        } else if raw.starts_with('"') {
            (1, false)
        } else if raw.starts_with('\'') {
            (1, true)
        } else {
            return value_span.start;
        };
        let mut pos = open;
        // A newline right after an opening triple quote is not part of the value.
        if open == 3 {
            if raw[pos..].starts_with("\r\n") {
                pos += 2;
            } else if raw[pos..].starts_with('\n') {
                pos += 1;
            }
        }
        let mut decoded = 0;
        let bytes = raw.as_bytes();
        while decoded < inner && pos < raw.len() {
            if !literal && bytes[pos] == b'\\' && pos + 1 < raw.len() {
                let (raw_len, out_len) = match bytes[pos + 1] {
                    b'u' => (6, 1),
                    b'U' => (10, 1),
                    _ => (2, 1),
                };
                pos += raw_len;
                decoded += out_len;
            } else {
                let ch_len = raw[pos..].chars().next().map(char::len_utf8).unwrap_or(1);
                pos += ch_len;
                decoded += ch_len;
            }
        }
        value_span.start + pos.min(raw.len())
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// "did you mean" for a misspelt name, by Jaro-Winkler similarity.
pub fn suggest<'a, I>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let cl = c.to_lowercase();
            let jw = strsim::jaro_winkler(&lower, &cl);
            // Short words with two letters wrong score low on Jaro-Winkler
            // but are still obvious typos ("sink" for "sync").
            let close = lower.chars().count() >= 4 && strsim::levenshtein(&lower, &cl) <= 2;
            (if close { jw.max(0.8) } else { jw }, c)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean {c:?}?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile {
            path: PathBuf::from("rules/x.toml"),
            text: text.to_string(),
        }
    }

    #[test]
    fn locates_lines_and_unicode_columns() {
        let f = file("a = 1\nnäme = \"x\"\n");
        let off = f.text.find("\"x\"").unwrap_or(0);
        let (line, col, text) = f.locate(off);
        assert_eq!((line, col, text.as_str()), (2, 8, "näme = \"x\""));
    }

    #[test]
    fn maps_offsets_inside_strings() {
        let f = file("e = \"a\\\"b & Foo\"\nl = 'x & Bar'\n");
        let basic = f.text.find('"').unwrap_or(0)..f.text.find('\n').unwrap_or(0);
        // decoded `a"b & Foo`: "Foo" starts at 6, raw has one extra backslash.
        let at = f.offset_in_string(&basic, 6);
        assert_eq!(&f.text[at..at + 3], "Foo");
        let lit_start = f.text.find('\'').unwrap_or(0);
        let literal = lit_start..f.text.len() - 1;
        let at = f.offset_in_string(&literal, 4);
        assert_eq!(&f.text[at..at + 3], "Bar");
    }

    #[test]
    fn renders_caret_and_help() {
        let f = file("[agent]\nanchor = \"Wrker_ID\"\n");
        let start = f.text.find("\"Wrker").unwrap_or(0);
        let e = RuleError::at(&f, start..start + 10, "unknown attribute \"Wrker_ID\"")
            .with_help(suggest("Wrker_ID", ["Worker_ID", "Email"]));
        assert_eq!(
            e.render(),
            "error: rules/x.toml:2:10: unknown attribute \"Wrker_ID\" (did you mean \"Worker_ID\"?)\n  |\n2 | anchor = \"Wrker_ID\"\n  |          ^^^^^^^^^^ did you mean \"Worker_ID\"?\n"
        );
    }
}
