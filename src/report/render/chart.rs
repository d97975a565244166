//! The summary's chart: one stacked bar per target, one segment per section,
//! drawn here as inline SVG so it needs no script, no font file and no
//! image, and prints. The numbers are also in the summary table above it;
//! the chart only shows at a glance where the findings are. Screen readers
//! get a `<title>`, a `<desc>` listing the counts, and one `<title>` per
//! segment.

use super::CountColumn;
use super::count;
use super::page::Html;
use crate::report::Report;

/// Okabe–Ito: told apart by most colour-blind readers, and in greyscale.
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];
const LABEL_W: f64 = 180.0;
const BAR_W: f64 = 440.0;
const TOTAL_W: f64 = 70.0;
const ROW_H: f64 = 26.0;
const BAR_H: f64 = 16.0;
const PAD: f64 = 6.0;
/// A non-zero count stays visible beside a much larger one.
const MIN_SEGMENT: f64 = 2.0;
const LABEL_CHARS: usize = 26;

pub(super) fn render(h: &mut Html, report: &Report, cols: &[CountColumn<'_>]) {
    let totals: Vec<u64> = report
        .targets
        .iter()
        .map(|t| {
            cols.iter()
                .fold(0u64, |s, c| s.saturating_add(count(t, c.key)))
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    let width = LABEL_W + BAR_W + TOTAL_W;
    let height = PAD * 2.0 + ROW_H * report.targets.len() as f64;
    h.raw("<figure class=\"chart\">\n<svg role=\"img\" aria-labelledby=\"chart-t chart-d\" viewBox=\"0 0 ")
        .num(width)
        .raw(" ")
        .num(height)
        .raw("\" width=\"")
        .num(width)
        .raw("\" height=\"")
        .num(height)
        .raw("\">\n<title id=\"chart-t\">Findings per target and section</title>\n<desc id=\"chart-d\">");
    for (t, total) in report.targets.iter().zip(&totals) {
        h.text(&t.target).raw(": ").num(total);
        let parts: Vec<_> = cols
            .iter()
            .map(|c| (c, count(t, c.key)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if !parts.is_empty() {
            h.raw(" (");
            for (i, (c, n)) in parts.iter().enumerate() {
                if i > 0 {
                    h.raw(", ");
                }
                h.text(c.title).raw(" ").num(n);
            }
            h.raw(")");
        }
        h.raw(". ");
    }
    h.raw("</desc>\n");
    for (i, (t, total)) in report.targets.iter().zip(&totals).enumerate() {
        let y = PAD + ROW_H * i as f64;
        let text_y = y + ROW_H / 2.0 + 4.0;
        h.raw("<g><text class=\"lbl\" x=\"")
            .num(LABEL_W - 8.0)
            .raw("\" y=\"")
            .num(fmt(text_y))
            .raw("\" text-anchor=\"end\"><title>")
            .text(&t.target)
            .raw("</title>")
            .text(&shorten(&t.target))
            .raw("</text>");
        let mut x = LABEL_W;
        for (c, col) in cols.iter().enumerate() {
            let n = count(t, col.key);
            if n == 0 || max == 0 {
                continue;
            }
            let w = (n as f64 / max as f64 * BAR_W).max(MIN_SEGMENT);
            h.raw("<rect x=\"")
                .num(fmt(x))
                .raw("\" y=\"")
                .num(fmt(y + (ROW_H - BAR_H) / 2.0))
                .raw("\" width=\"")
                .num(fmt(w))
                .raw("\" height=\"")
                .num(BAR_H)
                .raw("\" fill=\"")
                .raw(PALETTE[c % PALETTE.len()])
                .raw("\"><title>")
                .text(&t.target)
                .raw(" — ")
                .text(col.title)
                .raw(": ")
                .num(n)
                .raw("</title></rect>");
            x += w;
        }
        h.raw("<text class=\"total\" x=\"")
            .num(fmt(x + 6.0))
            .raw("\" y=\"")
            .num(fmt(text_y))
            .raw("\">")
            .num(total)
            .raw("</text></g>\n");
    }
    h.raw("</svg>\n<figcaption><ul class=\"legend\">");
    for (c, col) in cols.iter().enumerate() {
        h.raw("<li><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" height=\"12\" fill=\"")
            .raw(PALETTE[c % PALETTE.len()])
            .raw("\"/></svg> ")
            .text(col.title)
            .raw("</li>");
    }
    h.raw("</ul></figcaption>\n</figure>\n");
}

/// One decimal is plenty for a chart and keeps the file small.
fn fmt(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= LABEL_CHARS {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(LABEL_CHARS - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{count_columns, tables};
    use super::*;
    use crate::report::{Section, TargetSummary};

    fn target(name: &str, counts: &[(&str, u64)]) -> TargetSummary {
        TargetSummary {
            target: name.into(),
            kind: "ldap".into(),
            accounts: 10,
            counts: counts.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            quarantined: None,
        }
    }

    fn chart(report: &Report) -> String {
        let tables = tables(report);
        let cols = count_columns(report, &tables);
        let mut h = Html(String::new());
        render(&mut h, report, &cols);
        h.0
    }

    #[test]
    fn one_segment_per_nonzero_count_each_with_a_title() {
        let report = Report {
            targets: vec![
                target("directory", &[("drift", 300), ("orphans", 1)]),
                target("app", &[("drift", 0), ("orphans", 0)]),
            ],
            sections: ["drift", "orphans"]
                .iter()
                .map(|k| Section {
                    key: k.to_string(),
                    title: k.to_uppercase(),
                    ..Section::default()
                })
                .collect(),
            ..Report::default()
        };
        let svg = chart(&report);
        assert_eq!(svg.matches("<rect x=").count(), 2);
        assert!(svg.contains("<title>directory — ORPHANS: 1</title>"));
        assert!(
            svg.contains("width=\"2\""),
            "the small count is still visible"
        );
        assert!(svg.contains(
            "<desc id=\"chart-d\">directory: 301 (DRIFT 300, ORPHANS 1). app: 0. </desc>"
        ));
        assert!(svg.contains("role=\"img\" aria-labelledby=\"chart-t chart-d\""));
    }

    #[test]
    fn long_names_are_shortened_by_characters_not_bytes() {
        let name = "é".repeat(40);
        let short = shorten(&name);
        assert_eq!(short.chars().count(), LABEL_CHARS);
        assert!(short.ends_with('…'));
        assert_eq!(shorten("dir"), "dir");
    }
}
