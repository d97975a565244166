//! The report as one HTML5 file an auditor can mail, archive, open offline
//! and print. Everything is inside it: the stylesheet (`report.css`) and the
//! script (`report.js`) inline, the chart as inline SVG, no URL to fetch;
//! a Content-Security-Policy forbids loading anything, so a value that slipped
//! through could not phone home either. The tables are real markup written
//! here, so the page reads the same with JavaScript off and on paper; the
//! script only adds sorting, filtering and the "N of M rows" counters, and
//! marks `<body data-ready="1">` when it has run.
//!
//! Hooks tests rely on: `<section id="sec-{slug}" data-rows="{n}">` per
//! section, `<tr data-row="{i}">` per row (`i` is the row's place in the
//! report; rows a sort finds equal keep that order), `<p data-count>` for
//! the counter.

use super::{Table, chart, count, count_columns};
use crate::report::Report;
use std::fmt::Display;

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");
/// Only inline style and script run; nothing may be fetched.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'";

/// The whole report as one self-contained HTML page.
pub fn html(report: &Report) -> String {
    render(report, &super::tables(report))
}

pub(super) fn render(report: &Report, tables: &[Table<'_>]) -> String {
    let rows: usize = tables.iter().map(Table::rows).sum();
    let mut h = Html(String::with_capacity(8192 + rows * 200));
    let title = if report.title.is_empty() {
        "Reconciliation report"
    } else {
        &report.title
    };
    h.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .raw("<meta http-equiv=\"Content-Security-Policy\" content=\"")
        .raw(CSP)
        .raw("\">\n<meta name=\"generator\" content=\"idsync\">\n<title>")
        .text(title)
        .raw("</title>\n<style>\n")
        .raw(CSS)
        .raw("</style>\n</head>\n<body>\n<header>\n<h1>")
        .text(title)
        .raw("</h1>\n<dl class=\"meta\">\n");
    meta(&mut h, "Period", &report.period, None);
    meta(&mut h, "Generated", &report.generated_at, Some("time"));
    meta(&mut h, "Store", &report.store, Some("code"));
    h.raw("</dl>\n</header>\n<main>\n");
    summary(&mut h, report, tables);
    for t in tables {
        section(&mut h, t);
    }
    h.raw("</main>\n<footer><p>Written by idsync. ")
        .raw("The same rows are in <code>reconcile.json</code> and one CSV file per section.</p></footer>\n<script>\n")
        .raw(JS)
        .raw("</script>\n</body>\n</html>\n");
    h.0
}

fn meta(h: &mut Html, label: &str, value: &str, tag: Option<&str>) {
    if value.is_empty() {
        return;
    }
    h.raw("<div><dt>").text(label).raw("</dt><dd>");
    match tag {
        Some("time") => h.raw("<time datetime=\"").text(value).raw("\">"),
        Some(t) => h.raw("<").raw(t).raw(">"),
        None => h,
    };
    h.text(value);
    if let Some(t) = tag {
        h.raw("</").raw(t).raw(">");
    }
    h.raw("</dd></div>\n");
}

fn summary(h: &mut Html, report: &Report, tables: &[Table<'_>]) {
    let cols = count_columns(report, tables);
    h.raw("<section id=\"summary\" aria-labelledby=\"summary-h\">\n")
        .raw("<h2 id=\"summary-h\">Summary</h2>\n");
    if report.targets.is_empty() {
        h.raw("<p class=\"none\">No targets.</p>\n");
    } else {
        h.raw("<div class=\"scroll\"><table class=\"summary\" data-sortable>\n<thead><tr>")
            .raw("<th scope=\"col\">Target</th><th scope=\"col\">Kind</th>")
            .raw("<th scope=\"col\" class=\"num\">Accounts</th>");
        for c in &cols {
            h.raw("<th scope=\"col\" class=\"num\">")
                .text(c.title)
                .raw("</th>");
        }
        h.raw("<th scope=\"col\">Quarantined</th></tr></thead>\n<tbody>\n");
        for (i, t) in report.targets.iter().enumerate() {
            h.raw("<tr data-row=\"")
                .num(i)
                .raw("\"><th scope=\"row\">")
                .text(&t.target)
                .raw("</th><td>")
                .text(&t.kind)
                .raw("</td><td class=\"num\">")
                .num(t.accounts)
                .raw("</td>");
            for c in &cols {
                count_cell(h, "td", count(t, c.key));
            }
            match &t.quarantined {
                Some(why) => h.raw("<td class=\"q\">Yes: ").text(why).raw("</td>"),
                None => h.raw("<td>No</td>"),
            };
            h.raw("</tr>\n");
        }
        h.raw("</tbody>\n<tfoot><tr class=\"totals\"><th scope=\"row\">Total</th><td></td>")
            .raw("<td class=\"num\">")
            .num(
                report
                    .targets
                    .iter()
                    .fold(0u64, |s, t| s.saturating_add(t.accounts)),
            )
            .raw("</td>");
        for c in &cols {
            let total = report
                .targets
                .iter()
                .fold(0u64, |s, t| s.saturating_add(count(t, c.key)));
            count_cell(h, "td", total);
        }
        let quarantined = report
            .targets
            .iter()
            .filter(|t| t.quarantined.is_some())
            .count();
        if quarantined > 0 {
            h.raw("<td class=\"q\">").num(quarantined).raw("</td>");
        } else {
            h.raw("<td>0</td>");
        }
        h.raw("</tr></tfoot>\n</table></div>\n");
        chart::render(h, report, &cols);
    }
    if !tables.is_empty() {
        h.raw("<nav class=\"toc\" aria-label=\"Sections\"><ol>\n");
        for t in tables {
            h.raw("<li><a href=\"#sec-")
                .text(&t.slug)
                .raw("\">")
                .text(&t.section.title)
                .raw("</a> ");
            count_cell(h, "span", t.rows() as u64);
            h.raw("</li>\n");
        }
        h.raw("</ol></nav>\n");
    }
    h.raw("</section>\n");
}

/// A count, marked when non-zero: a finding is what an auditor looks for.
fn count_cell(h: &mut Html, tag: &str, n: u64) {
    h.raw("<")
        .raw(tag)
        .raw(if n > 0 {
            " class=\"num nz\">"
        } else {
            " class=\"num\">"
        })
        .num(n)
        .raw("</")
        .raw(tag)
        .raw(">");
}

fn section(h: &mut Html, t: &Table<'_>) {
    let n = t.rows();
    h.raw("<section id=\"sec-")
        .text(&t.slug)
        .raw("\" class=\"finding\" data-key=\"")
        .text(&t.section.key)
        .raw("\" data-rows=\"")
        .num(n)
        .raw("\" aria-labelledby=\"h-")
        .text(&t.slug)
        .raw("\">\n<h2 id=\"h-")
        .text(&t.slug)
        .raw("\">")
        .text(&t.section.title)
        .raw(" ");
    count_cell(h, "span", n as u64);
    h.raw("</h2>\n");
    if !t.section.about.is_empty() {
        h.raw("<p class=\"about\">")
            .text(&t.section.about)
            .raw("</p>\n");
    }
    if n == 0 {
        h.raw("<p class=\"none\">None.</p>\n</section>\n");
        return;
    }
    // Hidden until the script runs: without it a filter box would do nothing.
    h.raw("<div class=\"tools\" hidden><label>Filter <input type=\"search\" data-filter aria-controls=\"t-")
        .text(&t.slug)
        .raw("\"></label> </div>\n<p class=\"count\" data-count aria-live=\"polite\">")
        .num(n)
        .raw(if n == 1 { " row" } else { " rows" })
        .raw("</p>\n<div class=\"scroll\"><table id=\"t-")
        .text(&t.slug)
        .raw("\" data-sortable>\n<thead><tr>");
    let numeric = numeric_columns(t);
    for (c, name) in t.columns.iter().enumerate() {
        h.raw(if numeric[c] {
            "<th scope=\"col\" class=\"num\">"
        } else {
            "<th scope=\"col\">"
        })
        .text(name)
        .raw("</th>");
    }
    h.raw("</tr></thead>\n<tbody>\n");
    for r in 0..n {
        h.raw("<tr data-row=\"").num(r).raw("\">");
        for (c, cell) in t.cells(r).enumerate() {
            h.raw(if numeric[c] {
                "<td class=\"num\">"
            } else {
                "<td>"
            })
            .text(cell)
            .raw("</td>");
        }
        h.raw("</tr>\n");
    }
    h.raw("</tbody>\n</table></div>\n</section>\n");
}

/// Columns whose every non-empty cell is a plain number are right-aligned.
fn numeric_columns(t: &Table<'_>) -> Vec<bool> {
    let mut numeric = vec![true; t.columns.len()];
    let mut any = vec![false; t.columns.len()];
    for r in 0..t.rows() {
        for (c, cell) in t.cells(r).enumerate() {
            let cell = cell.trim();
            if !cell.is_empty() {
                any[c] = true;
                numeric[c] &= is_number(cell);
            }
        }
    }
    numeric.iter().zip(any).map(|(n, a)| *n && a).collect()
}

fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut parts = digits.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    (!int.is_empty() || !frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// A page under construction: `raw` for markup written here, `text` for
/// anything that came from data, escaped for text and attribute values alike.
pub(super) struct Html(pub String);

impl Html {
    pub fn raw(&mut self, s: &str) -> &mut Html {
        self.0.push_str(s);
        self
    }

    pub fn num(&mut self, n: impl Display) -> &mut Html {
        use std::fmt::Write as _;
        // Writing into a String cannot fail.
        let _ = write!(self.0, "{n}");
        self
    }

    pub fn text(&mut self, s: &str) -> &mut Html {
        for c in s.chars() {
            match c {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&#39;"),
                // Control characters other than whitespace are not allowed
                // in an HTML document; show that something was there.
                '\t' | '\n' | '\r' => self.0.push(c),
                c if c.is_control() => self.0.push('\u{FFFD}'),
                c => self.0.push(c),
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Section, TargetSummary};

    fn report(rows: Vec<Vec<String>>) -> Report {
        Report {
            title: "Reconciliation".into(),
            generated_at: "2026-11-24T10:00:00Z".into(),
            period: "run 12".into(),
            store: "/var/lib/idsync/idsync.db".into(),
            targets: vec![TargetSummary {
                target: "directory".into(),
                kind: "ldap".into(),
                accounts: 120,
                counts: vec![("orphans".into(), rows.len() as u64)],
                quarantined: None,
            }],
            sections: vec![
                Section {
                    key: "orphans".into(),
                    title: "Orphans".into(),
                    about: "Accounts that join no identity.".into(),
                    columns: vec!["object".into(), "run".into()],
                    rows,
                },
                Section {
                    key: "missing".into(),
                    title: "Missing accounts".into(),
                    about: String::new(),
                    columns: vec!["identity".into()],
                    rows: vec![],
                },
            ],
        }
    }

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hostile_cells_are_escaped_in_text_and_attributes() {
        let mut r = report(vec![row(&[
            "<script>alert(1)</script> & \"quoted\" 'single' Zoë",
            "7",
        ])]);
        r.sections[0].key = "x\"><script>".into();
        r.targets[0].target = "<b>dir</b>".into();
        r.title = "A & B <i>".into();
        let page = html(&r);
        assert_eq!(
            page.matches("<script").count(),
            1,
            "only the page's own script"
        );
        assert!(page.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; &#39;single&#39; Zoë"
        ));
        assert!(page.contains("data-key=\"x&quot;&gt;&lt;script&gt;\""));
        assert!(page.contains("<th scope=\"row\">&lt;b&gt;dir&lt;/b&gt;</th>"));
        assert!(page.contains("<title>A &amp; B &lt;i&gt;</title>"));
        assert!(!page.contains("<b>dir"));
    }

    #[test]
    fn control_characters_do_not_reach_the_page() {
        let page = html(&report(vec![row(&["a\u{0}b\u{7}c\td", "1"])]));
        assert!(page.contains("a\u{FFFD}b\u{FFFD}c\td"));
        assert!(!page.contains('\u{0}'));
    }

    #[test]
    fn an_empty_section_says_none_instead_of_a_table() {
        let page = html(&report(vec![]));
        let missing = page
            .split("<section id=\"sec-missing\"")
            .nth(1)
            .unwrap_or("");
        let missing = missing.split("</section>").next().unwrap_or("");
        assert!(missing.contains("data-rows=\"0\""));
        assert!(missing.contains("<p class=\"none\">None.</p>"));
        assert!(!missing.contains("<table"));
    }

    #[test]
    fn rows_and_counts_have_hooks() {
        let rows = (0..3).map(|i| row(&[&format!("cn=u{i}"), "4"])).collect();
        let page = html(&report(rows));
        assert!(page.contains(
            "<section id=\"sec-orphans\" class=\"finding\" data-key=\"orphans\" data-rows=\"3\""
        ));
        assert_eq!(
            page.matches("<tr data-row=").count(),
            3 + 1,
            "three rows and one target"
        );
        assert!(page.contains("<p class=\"count\" data-count aria-live=\"polite\">3 rows</p>"));
        // The run column is all numbers, so it is right-aligned.
        assert!(page.contains("<td class=\"num\">4</td>"));
    }

    #[test]
    fn nothing_is_fetched_from_outside() {
        let page = html(&report(vec![row(&["https://evil.example/x.png", "1"])]));
        // The one URL is a cell's text, escaped, and never an attribute.
        let without_cell = page.replace("https://evil.example/x.png", "");
        for needle in [
            "http://", "https://", "src=", "srcset", "url(", "@import", "<link", "<img", "<iframe",
            "<object", "<embed",
        ] {
            assert!(
                !without_cell.contains(needle),
                "found {needle:?} in the page"
            );
        }
        // Links only jump within the page.
        for (i, _) in page.match_indices("href=\"") {
            let link: String = page[i..].chars().take(40).collect();
            assert!(link.starts_with("href=\"#"), "{link}");
        }
        assert!(page.contains(CSP));
    }

    #[test]
    fn quarantined_targets_and_nonzero_totals_stand_out() {
        let mut r = report(vec![row(&["cn=a", "1"])]);
        r.targets[0].quarantined = Some("3 unreachable answers".into());
        let page = html(&r);
        assert!(page.contains("<td class=\"q\">Yes: 3 unreachable answers</td>"));
        assert!(page.contains("<tr class=\"totals\">"));
        assert!(page.contains("<td class=\"num nz\">1</td>"));
    }

    #[test]
    fn numbers_are_recognised_without_accepting_words() {
        for s in ["0", "12", "-3", "+4.5", ".5", "10."] {
            assert!(is_number(s), "{s}");
        }
        for s in ["", "-", ".", "1e5", "NaN", "inf", "12a", "1.2.3", "run 9"] {
            assert!(!is_number(s), "{s}");
        }
    }
}
