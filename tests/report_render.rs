//! The reconciliation report's renderings seen from outside: the HTML page
//! rendered by a real browser (headless Chromium), its script run, sorting
//! and filtering driven as a reader would, a screenshot taken, and the CSV
//! and JSON files read back with the csv crate and serde_json and compared
//! with the rows the browser shows.

mod common;

use common::chromium;
use idsync::report::render::{self, Written};
use idsync::report::{Report, Section, TargetSummary};

/// Script that must never run: it is a cell's text, not markup.
const HOSTILE_SCRIPT: &str = "<script>document.body.dataset.pwned='1'</script>";
/// Breaks out of an attribute and a table if written unescaped.
const HOSTILE_MARKUP: &str =
    "\"></td></tr></table><img src=x onerror=\"document.body.dataset.pwned=2\">";

fn cells(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|s| s.to_string()).collect()
}

fn section(key: &str, title: &str, columns: &[&str], rows: Vec<Vec<String>>) -> Section {
    Section {
        key: key.into(),
        title: title.into(),
        about: format!("{title}: what these rows are and what to do about them."),
        columns: cells(columns),
        rows,
    }
}

/// Names as HR systems send them: diacritics, apostrophes, other scripts.
const PEOPLE: &[(&str, &str)] = &[
    ("W100014", "Zoë Ñúñez-O'Connor"),
    ("W100015", "Łukasz Żółć"),
    ("W100016", "李小龍"),
    ("S-2201", "Ana \"Nita\" Ramos & Sons"),
    ("W100017", "Zoë Adams"),
    ("W100018", "Björn <Bjørn> Ødegaard"),
];

fn report() -> Report {
    let targets = ["directory", "app", "badges", "payroll-file"];
    let mut drift = Vec::new();
    // Runs 9, 10, 100, 11, ... sort differently as text and as numbers.
    for i in 0..40usize {
        let (id, name) = PEOPLE[i % PEOPLE.len()];
        let run = [9, 10, 100, 11, 2, 1000][i % 6] + i / 6;
        drift.push(cells(&[
            id,
            targets[i % 3],
            &format!("uid=user{i},ou=people,dc=example,dc=com"),
            ["displayName", "title", "mail"][i % 3],
            name,
            &format!("{name} (edited by hand)"),
            "2026-11-24T09:00:00Z",
            if i % 7 == 0 {
                "failed: server busy"
            } else {
                "rolled back"
            },
            &run.to_string(),
        ]));
    }
    let drift_columns = [
        "identity",
        "target",
        "object",
        "attribute",
        "expected",
        "found",
        "detected",
        "outcome",
        "run",
    ];
    Report {
        title: "Reconciliation — Example & Co <prod>".into(),
        generated_at: "2026-11-24T10:15:00Z".into(),
        period: "since 2026-11-01".into(),
        store: "/var/lib/idsync/idsync.db".into(),
        targets: vec![
            target("directory", "ldap", 1250, [14, 2, 1, 0, 2, 0, 1, 0], None),
            target(
                "app",
                "scim",
                430,
                [13, 0, 0, 0, 1, 0, 2, 1],
                Some("3 unreachable answers in run 12"),
            ),
            target("badges", "sql", 980, [13, 1, 0, 0, 0, 0, 0, 0], None),
            target("payroll-file", "csv", 0, [0; 8], None),
        ],
        sections: vec![
            section(
                "drift-rolled-back",
                "Drift found and rolled back",
                &drift_columns,
                drift,
            ),
            section(
                "drift-reported",
                "Drift only reported",
                &drift_columns,
                vec![
                    cells(&[
                        "W100015",
                        "directory",
                        "uid=lzolc,ou=people",
                        "title",
                        "Engineer",
                        "Chief <b>Engineer</b>",
                        "2026-11-24T09:00:00Z",
                        "reported",
                        "12",
                    ]),
                    cells(&[
                        "W100016",
                        "badges",
                        "badge 7731",
                        "room",
                        "B-204",
                        "",
                        "2026-11-24T09:00:00Z",
                        "reported",
                        "12",
                    ]),
                    cells(&[
                        "W100014",
                        "directory",
                        "uid=znunez,ou=people",
                        "mail",
                        "zoe.nunez@example.com",
                        "zoe@evil.example",
                        "2026-11-24T09:00:00Z",
                        "reported",
                        "9",
                    ]),
                ],
            ),
            section(
                "orphans",
                "Orphans",
                &["identity", "target", "object", "found", "run"],
                vec![cells(&[
                    "",
                    "directory",
                    "uid=backdoor,ou=people,dc=example,dc=com",
                    HOSTILE_SCRIPT,
                    "12",
                ])],
            ),
            section(
                "missing",
                "Missing accounts",
                &["identity", "target", "object", "run"],
                vec![],
            ),
            section(
                "leavers-enabled",
                "Leavers still enabled",
                &["identity", "name", "target", "object", "left", "run"],
                vec![
                    cells(&[
                        "W100014",
                        PEOPLE[0].1,
                        "directory",
                        "uid=znunez,ou=people",
                        "2026-10-31",
                        "12",
                    ]),
                    cells(&[
                        "W100018",
                        PEOPLE[5].1,
                        "directory",
                        "uid=bodegaard,ou=people",
                        "2026-11-15",
                        "12",
                    ]),
                    cells(&[
                        "W100018",
                        PEOPLE[5].1,
                        "app",
                        "2819c223-7f76-453a-919d-413861904646",
                        "2026-11-15",
                        "12",
                    ]),
                ],
            ),
            section(
                "ambiguous-joins",
                "Ambiguous joins waiting for a decision",
                &["agent", "anchor", "candidates", "run"],
                vec![],
            ),
            section(
                "export-errors",
                "Export errors",
                &["identity", "target", "object", "error", "run"],
                vec![
                    cells(&["S-2201", "app", "", HOSTILE_MARKUP, "12"]),
                    cells(&[
                        "W100016",
                        "app",
                        "",
                        "400 Bad Request:\n{\"detail\": \"userName & email must be unique\"}",
                        "12",
                    ]),
                    cells(&[
                        "W100015",
                        "directory",
                        "uid=lzolc,ou=people",
                        "constraint violation: 'mail' <none>",
                        "11",
                    ]),
                ],
            ),
            section(
                "quarantined",
                "Quarantined targets",
                &["target", "since run", "reason"],
                vec![cells(&["app", "12", "3 unreachable answers in run 12"])],
            ),
        ],
    }
}

fn target(
    name: &str,
    kind: &str,
    accounts: u64,
    counts: [u64; 8],
    quarantined: Option<&str>,
) -> TargetSummary {
    let keys = [
        "drift-rolled-back",
        "drift-reported",
        "orphans",
        "missing",
        "leavers-enabled",
        "ambiguous-joins",
        "export-errors",
        "quarantined",
    ];
    TargetSummary {
        target: name.into(),
        kind: kind.into(),
        accounts,
        counts: keys
            .iter()
            .zip(counts)
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        quarantined: quarantined.map(String::from),
    }
}

fn written() -> (tempfile::TempDir, Report, Written) {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = report();
    let written = render::write_all(&report, &dir.path().join("report")).expect("write the report");
    (dir, report, written)
}

fn body_tag(dom: &str) -> &str {
    let start = dom.find("<body").expect("a <body> in the DOM");
    let rest = &dom[start..];
    &rest[..rest.find('>').expect("the end of <body>")]
}

/// An attribute's value in a tag as Chromium serializes it (double quotes).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

fn dom_rows(section: &str) -> usize {
    section.matches("<tr data-row=").count()
}

#[test]
fn page_renders_in_chromium_with_every_row_and_the_script_ran() {
    let (_dir, report, written) = written();
    let dom = chromium::dump_dom(&written.html);
    let body = body_tag(&dom);
    assert_eq!(
        attr(body, "data-ready"),
        Some("1"),
        "the script did not finish: {body}"
    );
    assert_eq!(
        attr(body, "data-pwned"),
        None,
        "a cell's text ran as script"
    );
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(!dom.contains("<img"), "a cell's text became markup");
    // The hostile text is on the page, as text.
    assert!(dom.contains("&lt;script&gt;document.body.dataset.pwned='1'&lt;/script&gt;"));
    assert!(dom.contains("Björn &lt;Bjørn&gt; Ødegaard"));
    assert!(dom.contains("李小龍"));

    assert_eq!(
        dom.matches("<section id=\"sec-").count(),
        report.sections.len()
    );
    for (s, w) in report.sections.iter().zip(&written.sections) {
        let html = chromium::dom_section(&dom, &format!("sec-{}", s.key));
        let n = s.rows.len();
        assert_eq!(dom_rows(html), n, "rows of {} in the DOM", s.key);
        assert_eq!(w.rows, n);
        assert!(html.contains(&format!("data-rows=\"{n}\"")));
        if n == 0 {
            assert!(html.contains(">None.</p>"), "{html}");
            assert!(!html.contains("<table"));
        } else {
            assert!(
                html.contains(&format!(">{n} of {n} rows</p>")),
                "no counter in {}",
                s.key
            );
            // The filter box is shown once the script can serve it.
            assert!(html.contains("<div class=\"tools\">"), "{}", s.key);
            assert_eq!(
                html.matches("aria-sort=\"none\"").count(),
                s.columns.len(),
                "every header of {} sorts",
                s.key
            );
        }
    }
    let summary = chromium::dom_section(&dom, "summary");
    assert_eq!(dom_rows(summary), report.targets.len());
    assert!(summary.contains("<td class=\"q\">Yes: 3 unreachable answers in run 12</td>"));
    assert!(summary.contains("<svg role=\"img\""));
}

#[test]
fn page_reads_without_its_script() {
    let (dir, report, written) = written();
    // What a browser with JavaScript off builds: the page minus its script
    // (its only one; a cell's `<script>` is escaped text).
    let page = std::fs::read_to_string(&written.html).expect("read the page");
    let start = page.find("<script>").expect("the page's script");
    let end = page
        .find("</script>")
        .expect("the end of the page's script")
        + "</script>".len();
    let no_script = dir.path().join("no-script.html");
    std::fs::write(&no_script, format!("{}{}", &page[..start], &page[end..])).expect("write");
    let dom = chromium::dump_dom(&no_script);
    assert_eq!(
        attr(body_tag(&dom), "data-ready"),
        None,
        "the script was meant to be gone"
    );
    for s in &report.sections {
        let html = chromium::dom_section(&dom, &format!("sec-{}", s.key));
        assert_eq!(dom_rows(html), s.rows.len(), "rows of {}", s.key);
        if !s.rows.is_empty() {
            let rows = if s.rows.len() == 1 { "row" } else { "rows" };
            assert!(
                html.contains(&format!(">{} {rows}</p>", s.rows.len())),
                "{html}"
            );
            assert!(
                html.contains("<div class=\"tools\" hidden=\"\">"),
                "{}",
                s.key
            );
        }
    }
    assert!(chromium::dom_section(&dom, "summary").contains("<title id=\"chart-t\">"));
}

#[test]
fn sorting_and_filtering_work_in_chromium() {
    let (dir, report, written) = written();
    let section = &report.sections[0];
    let run = section
        .columns
        .iter()
        .position(|c| c == "run")
        .expect("a run column");
    // Drives the page as a reader would, after its own script, and leaves
    // what it saw on <body> for the DOM dump.
    let driver = format!(
        r#"<script>
(function () {{
  var s = document.getElementById("sec-{key}");
  var button = s.querySelectorAll("thead th")[{run}].querySelector("button");
  function column() {{
    return Array.prototype.map.call(s.querySelectorAll("tbody tr"), function (r) {{
      return r.cells[{run}].textContent;
    }}).join(",");
  }}
  button.click();
  document.body.dataset.ascending = column();
  document.body.dataset.sortAfterOne = button.parentNode.getAttribute("aria-sort");
  button.click();
  document.body.dataset.descending = column();
  document.body.dataset.sortAfterTwo = button.parentNode.getAttribute("aria-sort");
  var input = s.querySelector("input[data-filter]");
  input.value = "  ZOË  ";
  input.dispatchEvent(new Event("input"));
  document.body.dataset.visible = s.querySelectorAll("tbody tr:not([hidden])").length;
  document.body.dataset.counter = s.querySelector("[data-count]").textContent;
}})();
</script>
"#,
        key = section.key
    );
    let page = std::fs::read_to_string(&written.html).expect("read the page");
    let end = page.rfind("</body>").expect("</body>");
    let driven = dir.path().join("driven.html");
    std::fs::write(&driven, format!("{}{driver}{}", &page[..end], &page[end..])).expect("write");

    let dom = chromium::dump_dom(&driven);
    let body = body_tag(&dom);
    let mut runs: Vec<u64> = section
        .rows
        .iter()
        .map(|r| r[run].parse().expect("a run number"))
        .collect();
    runs.sort_unstable();
    let ascending: Vec<String> = runs.iter().map(u64::to_string).collect();
    let descending: Vec<String> = runs.iter().rev().map(u64::to_string).collect();
    assert_eq!(
        attr(body, "data-ascending"),
        Some(ascending.join(",").as_str()),
        "numbers sort as numbers"
    );
    assert_eq!(
        attr(body, "data-descending"),
        Some(descending.join(",").as_str())
    );
    assert_eq!(attr(body, "data-sort-after-one"), Some("ascending"));
    assert_eq!(attr(body, "data-sort-after-two"), Some("descending"));
    // The filter matches a row's text ignoring case and surrounding spaces.
    let zoe = section
        .rows
        .iter()
        .filter(|r| r.concat().to_lowercase().contains("zoë"))
        .count();
    assert!(
        zoe > 0 && zoe < section.rows.len(),
        "the filter must hide some rows and keep some"
    );
    assert_eq!(attr(body, "data-visible"), Some(zoe.to_string().as_str()));
    let counter = format!("{zoe} of {} rows", section.rows.len());
    assert_eq!(attr(body, "data-counter"), Some(counter.as_str()));
}

#[test]
fn screenshot_is_a_png_of_the_requested_size_with_something_drawn() {
    let (dir, _report, written) = written();
    let png = dir.path().join("report.png");
    chromium::screenshot(&written.html, &png, 1280, 1600);
    let bytes = std::fs::read(&png).expect("read the screenshot");
    assert_eq!(
        chromium::png_size(&bytes),
        Some((1280, 1600)),
        "not a 1280x1600 PNG"
    );
    // A blank page of the same size compresses to a few kilobytes; text,
    // tables and a chart cannot.
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").expect("write");
    let blank_png = dir.path().join("blank.png");
    chromium::screenshot(&blank, &blank_png, 1280, 1600);
    let blank_len = std::fs::metadata(&blank_png)
        .expect("blank screenshot")
        .len();
    assert!(
        bytes.len() as u64 > 5 * blank_len && bytes.len() < 20_000_000,
        "screenshot of {} bytes against {blank_len} for a blank page",
        bytes.len()
    );
}

#[test]
fn csv_and_json_agree_with_the_rendered_page() {
    let (_dir, report, written) = written();
    let dom = chromium::dump_dom(&written.html);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written.json).expect("read the JSON"))
            .expect("the JSON parses");
    assert_eq!(json["title"], report.title.as_str());
    for (i, (s, w)) in report.sections.iter().zip(&written.sections).enumerate() {
        let in_page = dom_rows(chromium::dom_section(&dom, &format!("sec-{}", s.key)));
        assert_eq!(
            w.csv.file_name().and_then(|n| n.to_str()),
            Some(format!("{}.csv", s.key).as_str())
        );
        let mut csv = csv::Reader::from_path(&w.csv).expect("open the CSV");
        let header: Vec<String> = csv
            .headers()
            .expect("a header")
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(header, s.columns, "{}", w.csv.display());
        let records: Vec<Vec<String>> = csv
            .records()
            .map(|r| r.expect("a record").iter().map(String::from).collect())
            .collect();
        assert_eq!(records.len(), in_page, "{} rows in CSV and page", s.key);
        assert_eq!(records, s.rows, "{} cells survive the CSV", s.key);

        let j = &json["sections"][i];
        assert_eq!(j["key"], s.key.as_str());
        let rows = j["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), in_page, "{} rows in JSON and page", s.key);
        for (row, cells) in rows.iter().zip(&s.rows) {
            for (col, cell) in s.columns.iter().zip(cells) {
                assert_eq!(row[col], cell.as_str(), "{} {col}", s.key);
            }
        }
    }
    let mut summary = csv::Reader::from_path(&written.summary_csv).expect("open summary.csv");
    let header: Vec<String> = summary
        .headers()
        .expect("a header")
        .iter()
        .map(String::from)
        .collect();
    let mut expected = vec!["target".to_string(), "kind".into(), "accounts".into()];
    expected.extend(report.sections.iter().map(|s| s.key.clone()));
    expected.push("quarantined".into());
    assert_eq!(header, expected);
    let records: Vec<csv::StringRecord> = summary.records().map(|r| r.expect("a record")).collect();
    assert_eq!(
        records.len(),
        dom_rows(chromium::dom_section(&dom, "summary"))
    );
    assert_eq!(&records[1][1], "scim");
    assert_eq!(
        &records[1][header.len() - 1],
        "3 unreachable answers in run 12"
    );
    assert_eq!(json["targets"][1]["counts"]["export-errors"], 2);
}

#[test]
fn png_size_reads_the_header_and_refuses_other_files() {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend(640u32.to_be_bytes());
    png.extend(480u32.to_be_bytes());
    assert_eq!(chromium::png_size(&png), Some((640, 480)));
    assert_eq!(chromium::png_size(b"GIF89a"), None);
    assert_eq!(chromium::png_size(&png[..20]), None);
}
