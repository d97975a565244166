//! Delimited files: one object per data row, the header naming the columns.
//!
//! Parsing is the `csv` crate's, on bytes: quoting, doubled quotes, fields
//! spanning lines and CRLF are its business, and because delimiters and
//! quotes are ASCII, splitting bytes first and decoding each field after is
//! right for UTF-8, Latin-1 and Windows-1252 alike. Files are streamed
//! through one reused record buffer, so a 200 MB export costs no more memory
//! than a small one. Anything wrong with one row is reported for that row
//! and the import goes on; only a file that cannot be opened, or whose
//! header does not fit the configuration, fails as a whole.
//!
//! A file is a full snapshot of its system, so a delta import still reads
//! all of it, but cheaply: the digest of the whole file says when nothing
//! changed at all, and otherwise each row is first reported by its anchor
//! and a fingerprint of its raw fields ([`Connector::fingerprints`]); only
//! the rows the connector space does not already hold with that fingerprint
//! are converted, read again by their byte offsets ([`Connector::fetch`]).

use super::convert::{ColumnPlan, RowConverter};
use super::mark::{self, Digesting, RowPlace, SourceDigest, SourceMark};
use super::{Connector, ConnectorError, CsvConfig, Encoding, ImportSink, ImportedObject, RowError};
use crate::model::Schema;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Cursor, Read};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The file with its byte-order mark already consumed, hashed as it is read.
type Source = LineCounter<Digesting<std::io::Chain<Cursor<Vec<u8>>, File>>>;

/// Rows closer than this to the next one wanted are read through rather
/// than sought: a seek costs a buffer refill of [`FETCH_BUFFER`] bytes. A
/// 1 % change spreads the wanted rows a few kilobytes apart, and reading
/// through those gaps parsed the whole file a second time.
const READ_THROUGH: u64 = 2 * 1024;

/// The buffer of a fetch, which reads a row (or a few) per seek.
const FETCH_BUFFER: usize = 4 * 1024;

pub struct CsvConnector {
    config: CsvConfig,
    /// What [`Connector::fingerprints`] learnt, for the [`Connector::fetch`]
    /// that follows it.
    pass: Option<Pass>,
}

struct Pass {
    plan: ColumnPlan,
    rules: u64,
    header: u64,
    skipped: u64,
}

/// A file opened and its header read.
struct Opened {
    reader: csv::Reader<Source>,
    plan: ColumnPlan,
    /// The key of row fingerprints: the column rules and this header.
    rules: u64,
    /// The fingerprint of the header row itself.
    header: u64,
    /// Bytes before the parser's first one (a byte-order mark).
    skipped: u64,
}

impl CsvConfig {
    /// A key for everything that decides how a row's bytes convert.
    pub fn rules_key(&self) -> u64 {
        mark::rules_key(&format!(
            "csv {:?} {:?} {:?} {:?} {:?}",
            self.delimiter, self.quote, self.encoding, self.anchor, self.columns
        ))
    }
}

impl CsvConnector {
    pub fn new(config: CsvConfig) -> CsvConnector {
        CsvConnector { config, pass: None }
    }

    fn error(&self, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Source {
            path: self.config.display.clone(),
            message: message.into(),
        }
    }

    fn io(&self, source: std::io::Error) -> ConnectorError {
        ConnectorError::Io {
            path: self.config.display.clone(),
            source,
        }
    }

    fn builder(&self) -> csv::ReaderBuilder {
        let mut b = csv::ReaderBuilder::new();
        b.delimiter(self.config.delimiter)
            .quote(self.config.quote)
            .has_headers(false)
            // Rows with the wrong number of fields are reported one by one.
            .flexible(true);
        b
    }

    /// Opens the file and reads the header: a reader positioned on the first
    /// data row, and the compiled column plan.
    fn open(&self) -> Result<Opened, ConnectorError> {
        let c = &self.config;
        if c.delimiter == c.quote {
            return Err(self.error("the delimiter and the quote character must differ"));
        }
        if matches!(c.delimiter, b'\n' | b'\r') || matches!(c.quote, b'\n' | b'\r') {
            return Err(self.error("the delimiter and quote character cannot be line breaks"));
        }
        if c.encoding == Encoding::Utf8 && (!c.delimiter.is_ascii() || !c.quote.is_ascii()) {
            // A non-ASCII byte is part of a multi-byte character in UTF-8.
            return Err(
                self.error("in a UTF-8 file the delimiter and quote must be ASCII characters")
            );
        }

        let mut file = File::open(&c.path).map_err(|e| self.io(e))?;
        let mut head = Vec::with_capacity(UTF8_BOM.len());
        (&mut file)
            .take(UTF8_BOM.len() as u64)
            .read_to_end(&mut head)
            .map_err(|e| self.io(e))?;
        let mut skipped = 0;
        if head == UTF8_BOM {
            if c.encoding != Encoding::Utf8 {
                return Err(self.error(format!(
                    "the file starts with a UTF-8 byte-order mark, but the encoding is {}; \
                     it is most likely UTF-8",
                    encoding_name(c.encoding)
                )));
            }
            head.clear();
            skipped = UTF8_BOM.len() as u64;
        } else if c.encoding == Encoding::Utf8
            && (head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF"))
        {
            return Err(self.error("the file is UTF-16, which is not supported; save it as UTF-8"));
        }
        let mut source = Digesting::new(Cursor::new(head).chain(file));
        if skipped > 0 {
            source.feed(UTF8_BOM);
        }

        let mut reader = self
            .builder()
            .buffer_capacity(64 * 1024)
            .from_reader(LineCounter::new(source));

        let mut header = csv::ByteRecord::new();
        let found = reader
            .read_byte_record(&mut header)
            .map_err(|e| self.csv_error(e))?;
        if !found {
            return Err(self.error("the file is empty; a header row is required"));
        }
        let mut scratch = String::new();
        let mut names = Vec::with_capacity(header.len());
        for (i, bytes) in header.iter().enumerate() {
            let name = decode(c.encoding, bytes, &mut scratch).ok_or_else(|| {
                self.error(format!(
                    "the header is not valid UTF-8 (column {}); is the encoding right?",
                    i + 1
                ))
            })?;
            // Spaces after a delimiter are layout, not part of the name.
            names.push(name.trim().to_string());
        }
        let plan = ColumnPlan::new(&names, &c.columns, &c.anchor)
            .map_err(|m| self.error(format!("header: {m}")))?;
        let header = mark::row_print(&header, 0, &mut Vec::new());
        Ok(Opened {
            reader,
            plan,
            rules: mark::combine(c.rules_key(), header),
            header,
            skipped,
        })
    }

    fn csv_error(&self, e: csv::Error) -> ConnectorError {
        match e.into_kind() {
            csv::ErrorKind::Io(e) => self.io(e),
            other => self.error(format!("{other:?}")),
        }
    }

    fn changed(&self) -> ConnectorError {
        self.error("the file changed while it was read; import it again")
    }
}

/// What turns records into objects, kept for a whole read.
struct Rows<'p> {
    plan: &'p ColumnPlan,
    conv: RowConverter<'p>,
    encoding: Encoding,
    display: &'p str,
    scratch: String,
}

impl<'p> Rows<'p> {
    fn new(plan: &'p ColumnPlan, config: &'p CsvConfig) -> Rows<'p> {
        Rows {
            plan,
            conv: plan.converter(),
            encoding: config.encoding,
            display: &config.display,
            scratch: String::new(),
        }
    }

    fn reject(
        &self,
        sink: &mut dyn ImportSink,
        line: u64,
        anchor: Option<String>,
        message: String,
    ) {
        sink.reject(RowError {
            source: self.display.to_string(),
            line,
            anchor,
            message,
        });
    }

    /// Whether the record has the header's number of fields; reports it
    /// when not.
    fn fits(&self, record: &csv::ByteRecord, line: u64, sink: &mut dyn ImportSink) -> bool {
        let width = self.plan.width();
        if record.len() == width {
            return true;
        }
        self.reject(
            sink,
            line,
            None,
            format!("expected {width} fields, found {}", record.len()),
        );
        false
    }

    /// Converts a record that [`Rows::fits`] and reports the object or why not.
    fn convert(
        &mut self,
        record: &csv::ByteRecord,
        line: u64,
        print: Option<u64>,
        sink: &mut dyn ImportSink,
    ) {
        // Validating a UTF-8 row in one pass is much cheaper than field
        // by field; a field whose bounds split a character makes `get`
        // fail, which is then the field's error like any other.
        let whole = match self.encoding {
            Encoding::Utf8 => std::str::from_utf8(record.as_slice()).ok(),
            _ => None,
        };
        for (i, bytes) in record.iter().enumerate() {
            if !self.plan.wants(i) {
                continue;
            }
            let text = match whole {
                Some(all) => record.range(i).and_then(|r| all.get(r)),
                None => decode(self.encoding, bytes, &mut self.scratch),
            };
            match text {
                Some(text) => self.conv.field(i, text),
                None => self.conv.fail(i, "is not valid UTF-8"),
            }
        }
        match self.conv.finish() {
            Ok((anchor, attrs)) => sink.object(ImportedObject {
                anchor,
                attrs,
                line,
                print,
            }),
            Err(f) => self.reject(sink, line, f.anchor, f.message),
        }
    }

    /// The record's anchor when it can be told from its anchor field alone.
    fn anchor<'r>(&'r mut self, record: &'r csv::ByteRecord) -> Option<Cow<'r, str>> {
        let column = self.plan.anchor_column();
        let text = decode(self.encoding, record.get(column)?, &mut self.scratch)?;
        self.plan.anchor_of(text)
    }
}

impl Connector for CsvConnector {
    fn kind(&self) -> &'static str {
        "csv"
    }

    fn schema(&self) -> Result<Schema, ConnectorError> {
        Ok(self.open()?.plan.schema().clone())
    }

    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<(), ConnectorError> {
        let Opened {
            mut reader,
            plan,
            rules,
            ..
        } = self.open()?;
        let mut rows = Rows::new(&plan, &self.config);
        let mut record = csv::ByteRecord::new();
        let mut scratch = Vec::new();
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| self.csv_error(e))?
        {
            // The csv crate's own line number is taken before it skips the
            // `\n` of a CRLF and any blank lines, so it is one line early
            // in every Windows file; its byte offset is exact.
            let start = record.position().map_or(0, |p| p.byte());
            let line = reader.get_mut().line_at(start);
            if rows.fits(&record, line, sink) {
                let print = mark::row_print(&record, rules, &mut scratch);
                rows.convert(&record, line, Some(print), sink);
            }
        }
        let file = reader.get_ref().inner.digest();
        sink.mark(SourceMark::Digest(SourceDigest { file, rules }));
        Ok(())
    }

    fn digest(&self) -> Result<Option<SourceDigest>, ConnectorError> {
        let rules = self.open()?.rules;
        let file = mark::file_digest(&self.config.path).map_err(|e| self.io(e))?;
        Ok(Some(SourceDigest { file, rules }))
    }

    fn fingerprints(&mut self, sink: &mut dyn ImportSink) -> Result<(), ConnectorError> {
        self.pass = None;
        let Opened {
            mut reader,
            plan,
            rules,
            header,
            skipped,
        } = self.open()?;
        let mut rows = Rows::new(&plan, &self.config);
        let mut record = csv::ByteRecord::new();
        let mut scratch = Vec::new();
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| self.csv_error(e))?
        {
            let start = record.position().map_or(0, |p| p.byte());
            let line = reader.get_mut().line_at(start);
            if !rows.fits(&record, line, sink) {
                continue;
            }
            let print = mark::row_print(&record, rules, &mut scratch);
            if let Some(anchor) = rows.anchor(&record) {
                let at = start + skipped;
                sink.print(&anchor, RowPlace { at, line, print });
                continue;
            }
            rows.convert(&record, line, Some(print), sink);
        }
        let file = reader.get_ref().inner.digest();
        drop(rows);
        self.pass = Some(Pass {
            plan,
            rules,
            header,
            skipped,
        });
        sink.mark(SourceMark::Digest(SourceDigest { file, rules }));
        Ok(())
    }

    fn fetch(
        &mut self,
        places: &[RowPlace],
        sink: &mut dyn ImportSink,
    ) -> Result<(), ConnectorError> {
        let Some(pass) = self.pass.take() else {
            return Err(ConnectorError::Unsupported(
                "fetching rows without fingerprinting them first",
            ));
        };
        let file = File::open(&self.config.path).map_err(|e| self.io(e))?;
        let mut reader = self
            .builder()
            .buffer_capacity(FETCH_BUFFER)
            .from_reader(file);
        let mut record = csv::ByteRecord::new();
        let mut scratch = Vec::new();
        let seek = |reader: &mut csv::Reader<File>, at: u64| {
            let mut p = csv::Position::new();
            p.set_byte(at);
            reader.seek(p)
        };
        // The header decides what each field means: it must not have moved.
        seek(&mut reader, pass.skipped).map_err(|e| self.csv_error(e))?;
        let same_header = reader
            .read_byte_record(&mut record)
            .map_err(|e| self.csv_error(e))?
            && mark::row_print(&record, 0, &mut scratch) == pass.header;
        if !same_header {
            return Err(self.changed());
        }
        let mut rows = Rows::new(&pass.plan, &self.config);
        for place in places {
            let here = reader.position().byte();
            if place.at < here || place.at - here > READ_THROUGH {
                seek(&mut reader, place.at).map_err(|e| self.csv_error(e))?;
            }
            loop {
                if !reader
                    .read_byte_record(&mut record)
                    .map_err(|e| self.csv_error(e))?
                {
                    return Err(self.changed());
                }
                let start = record.position().map_or(0, |p| p.byte());
                if start >= place.at {
                    if start != place.at {
                        return Err(self.changed());
                    }
                    break;
                }
            }
            if record.len() != pass.plan.width()
                || mark::row_print(&record, pass.rules, &mut scratch) != place.print
            {
                return Err(self.changed());
            }
            rows.convert(&record, place.line, Some(place.print), sink);
        }
        Ok(())
    }
}

/// Counts line breaks (LF, CRLF or a lone CR) in the bytes the csv reader
/// pulls through it, so that the line where a record starts can be told
/// from the record's byte offset.
///
/// Only the runs of CR/LF bytes the parser has not yet passed are kept: the
/// reader buffers ahead by a bounded amount, so memory stays constant.
struct LineCounter<R> {
    inner: R,
    /// Bytes passed through so far.
    offset: u64,
    /// The last byte passed through, to count CRLF once across reads.
    prev: u8,
    /// Line breaks in every byte passed through.
    breaks: u64,
    /// Maximal runs of CR/LF bytes, in order, not yet behind the parser.
    runs: VecDeque<BreakRun>,
    /// Line breaks before the first of `runs`.
    behind: u64,
}

struct BreakRun {
    start: u64,
    end: u64,
    /// Line breaks up to the end of this run.
    breaks: u64,
}

impl<R> LineCounter<R> {
    fn new(inner: R) -> LineCounter<R> {
        LineCounter {
            inner,
            offset: 0,
            prev: 0,
            breaks: 0,
            runs: VecDeque::new(),
            behind: 0,
        }
    }

    /// The 1-based line of the first byte of the record the parser says
    /// starts at byte `start`. The parser starts a record right after the
    /// terminator of the one before, before it skips the rest of a CRLF and
    /// blank lines; so a start inside a run of breaks means the record
    /// begins after that run. Calls must come with growing `start`.
    fn line_at(&mut self, start: u64) -> u64 {
        while let Some(run) = self.runs.front() {
            if run.end > start {
                break;
            }
            self.behind = run.breaks;
            self.runs.pop_front();
        }
        match self.runs.front() {
            Some(run) if run.start <= start => run.breaks + 1,
            _ => self.behind + 1,
        }
    }

    fn scan(&mut self, chunk: &[u8]) {
        for at in memchr::memchr2_iter(b'\n', b'\r', chunk) {
            let b = chunk.get(at).copied().unwrap_or(b'\n');
            let prev = match at.checked_sub(1) {
                Some(p) => chunk.get(p).copied().unwrap_or(0),
                None => self.prev,
            };
            if !(b == b'\n' && prev == b'\r') {
                self.breaks += 1;
            }
            let offset = self.offset + at as u64;
            match self.runs.back_mut() {
                Some(run) if run.end == offset => {
                    run.end += 1;
                    run.breaks = self.breaks;
                }
                _ => self.runs.push_back(BreakRun {
                    start: offset,
                    end: offset + 1,
                    breaks: self.breaks,
                }),
            }
        }
        if let Some(&last) = chunk.last() {
            self.prev = last;
        }
        self.offset += chunk.len() as u64;
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(chunk) = buf.get(..n) {
            self.scan(chunk);
        }
        Ok(n)
    }
}

/// The text of one field; `None` only for invalid UTF-8 in a UTF-8 file
/// (the single-byte encodings map every byte to a character). Non-ASCII
/// single-byte text is decoded into `scratch`, reused across fields.
fn decode<'a>(encoding: Encoding, bytes: &'a [u8], scratch: &'a mut String) -> Option<&'a str> {
    if encoding != Encoding::Utf8 && bytes.is_ascii() {
        return std::str::from_utf8(bytes).ok();
    }
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(bytes).ok(),
        Encoding::Latin1 => {
            scratch.clear();
            scratch.extend(bytes.iter().map(|&b| char::from(b)));
            Some(scratch.as_str())
        }
        Encoding::Windows1252 => {
            scratch.clear();
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            scratch.push_str(&text);
            Some(scratch.as_str())
        }
    }
}

fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Utf8 => "utf-8",
        Encoding::Latin1 => "latin-1",
        Encoding::Windows1252 => "windows-1252",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::connector::convert::conformance::{self, Kind, Table};
    use crate::connector::{Collect, ColumnSpec, ColumnSpecs};
    use std::path::{Path, PathBuf};

    /// Stores tables as comma-separated UTF-8 written by the csv crate.
    pub(crate) struct CsvKind;

    impl Kind for CsvKind {
        fn make(
            &self,
            dir: &Path,
            table: &Table,
            anchor: &str,
            columns: ColumnSpecs,
        ) -> Box<dyn Connector> {
            let path = dir.join("people.csv");
            let mut w = csv::Writer::from_path(&path).unwrap();
            w.write_record(&table.columns).unwrap();
            for row in &table.rows {
                w.write_record(row.iter().map(|v| v.unwrap_or(""))).unwrap();
            }
            w.flush().unwrap();
            let mut config = config(path, anchor);
            config.columns = columns;
            Box::new(CsvConnector::new(config))
        }

        fn line(&self, row: usize) -> u64 {
            row as u64 + 2
        }
    }

    #[test]
    fn conformance() {
        conformance::conformance(&CsvKind);
    }

    fn config(path: PathBuf, anchor: &str) -> CsvConfig {
        CsvConfig {
            path,
            display: "hr/people.csv".to_string(),
            delimiter: b',',
            quote: b'"',
            encoding: Encoding::Utf8,
            anchor: anchor.to_string(),
            columns: ColumnSpecs::new(),
        }
    }

    /// A connector over `bytes` written to a temp file (kept alive by the
    /// returned guard).
    fn with_bytes(
        bytes: &[u8],
        tweak: impl FnOnce(&mut CsvConfig),
    ) -> (tempfile::TempDir, CsvConnector) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, bytes).unwrap();
        let mut c = config(path, "id");
        tweak(&mut c);
        (dir, CsvConnector::new(c))
    }

    fn import(c: &mut CsvConnector) -> Collect {
        let mut sink = Collect::default();
        c.full_import(&mut sink).unwrap();
        sink
    }

    fn value<'a>(c: &CsvConnector, sink: &'a Collect, obj: usize, attr: &str) -> Vec<&'a str> {
        let schema = c.schema().unwrap();
        let a = schema.get(attr).unwrap();
        sink.objects[obj].attrs.values(a).collect()
    }

    fn source_message(r: Result<impl Sized, ConnectorError>) -> String {
        match r {
            Err(ConnectorError::Source { path, message }) => {
                assert_eq!(path, "hr/people.csv");
                message
            }
            Err(e) => panic!("expected a source error, got {e}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/edge")
            .join(name)
    }

    #[test]
    fn bom_or_not_the_header_is_the_same() {
        for bytes in [&b"id,name\n1,Ann\n"[..], b"\xEF\xBB\xBFid,name\n1,Ann\n"] {
            let (_d, mut c) = with_bytes(bytes, |_| {});
            assert_eq!(c.schema().unwrap().names(), ["id", "name"]);
            let sink = import(&mut c);
            assert_eq!(sink.objects[0].anchor, "1");
            assert_eq!(sink.objects[0].line, 2);
        }
    }

    #[test]
    fn bom_with_a_single_byte_encoding_is_refused() {
        let (_d, c) = with_bytes(b"\xEF\xBB\xBFid\n1\n", |c| c.encoding = Encoding::Latin1);
        let msg = source_message(c.schema());
        assert!(msg.contains("byte-order mark"), "{msg}");
    }

    #[test]
    fn latin1_semicolon_file_decodes_umlauts() {
        let mut config = config(fixture("latin1_semicolon.csv"), "id");
        config.delimiter = b';';
        config.encoding = Encoding::Latin1;
        let mut c = CsvConnector::new(config);
        assert_eq!(c.schema().unwrap().names(), ["id", "Nachname", "Straße"]);
        let sink = import(&mut c);
        assert!(sink.rejected.is_empty(), "{:?}", sink.rejected);
        assert_eq!(value(&c, &sink, 0, "Nachname"), ["Müller"]);
        assert_eq!(value(&c, &sink, 1, "Nachname"), ["Öztürk"]);
        assert_eq!(value(&c, &sink, 1, "Straße"), ["Großer Weg ½"]);
    }

    #[test]
    fn windows1252_maps_the_c1_range() {
        // 0x80 is the euro sign and 0x9A "š" in Windows-1252, controls in Latin-1.
        let bytes = b"id,name\n1,Ko\x9Aice \x80\n";
        let (_d, mut c) = with_bytes(bytes, |c| c.encoding = Encoding::Windows1252);
        let sink = import(&mut c);
        assert_eq!(value(&c, &sink, 0, "name"), ["Košice €"]);
        let (_d, mut c) = with_bytes(bytes, |c| c.encoding = Encoding::Latin1);
        let sink = import(&mut c);
        assert_eq!(value(&c, &sink, 0, "name"), ["Ko\u{9A}ice \u{80}"]);
    }

    #[test]
    fn quoted_delimiters_newlines_and_quotes() {
        let bytes = b"id,name,note\n1,\"Smith, Ann\",\"two\nlines\"\n2,\"Say \"\"hi\"\"\",\n";
        let (_d, mut c) = with_bytes(bytes, |_| {});
        let sink = import(&mut c);
        assert!(sink.rejected.is_empty(), "{:?}", sink.rejected);
        assert_eq!(value(&c, &sink, 0, "name"), ["Smith, Ann"]);
        assert_eq!(value(&c, &sink, 0, "note"), ["two\nlines"]);
        assert_eq!(value(&c, &sink, 1, "name"), ["Say \"hi\""]);
        assert_eq!(sink.objects[1].line, 4, "the record after a two-line field");
    }

    #[test]
    fn other_quote_and_tab_delimiter() {
        let bytes = b"id\tname\n1\t'a\tb'\n";
        let (_d, mut c) = with_bytes(bytes, |c| {
            c.delimiter = b'\t';
            c.quote = b'\'';
        });
        let sink = import(&mut c);
        assert_eq!(value(&c, &sink, 0, "name"), ["a\tb"]);
    }

    #[test]
    fn crlf_bom_file_with_multiline_field_has_right_lines() {
        // Lines: 1 header, 2-3 row "1" (quoted CRLF inside), 4 row "2",
        // 5 a row with a bad date, 6 row "4".
        let mut config = config(fixture("bom_crlf_multiline.csv"), "id");
        config.columns.insert(
            "born".into(),
            ColumnSpec {
                date: vec!["%d.%m.%Y".into()],
                ..ColumnSpec::default()
            },
        );
        let mut c = CsvConnector::new(config);
        let sink = import(&mut c);
        let lines: Vec<(String, u64)> = sink
            .objects
            .iter()
            .map(|o| (o.anchor.clone(), o.line))
            .collect();
        assert_eq!(lines, [("1".into(), 2), ("2".into(), 4), ("4".into(), 6)]);
        assert_eq!(value(&c, &sink, 0, "note"), ["first\r\nsecond"]);
        assert_eq!(value(&c, &sink, 1, "born"), ["2001-02-03"]);
        assert_eq!(
            sink.rejected,
            [RowError {
                source: "hr/people.csv".into(),
                line: 5,
                anchor: Some("3".into()),
                message: "column \"born\": \"2001-02-30\" is not a date in the format %d.%m.%Y"
                    .into(),
            }]
        );
    }

    #[test]
    fn wrong_field_count_is_rejected_and_the_rest_kept() {
        let bytes = b"id,a,b\n1,x,y\n2,x\n3,x,y,z\n4,x,y\n";
        let (_d, mut c) = with_bytes(bytes, |_| {});
        let sink = import(&mut c);
        let anchors: Vec<&str> = sink.objects.iter().map(|o| o.anchor.as_str()).collect();
        assert_eq!(anchors, ["1", "4"]);
        let rejected: Vec<(u64, &str)> = sink
            .rejected
            .iter()
            .map(|r| (r.line, r.message.as_str()))
            .collect();
        assert_eq!(
            rejected,
            [
                (3, "expected 3 fields, found 2"),
                (4, "expected 3 fields, found 4")
            ]
        );
    }

    #[test]
    fn missing_anchor_is_a_row_error() {
        let (_d, mut c) = with_bytes(b"id,name\n,Ann\n  ,Bo\n3,Cy\n", |_| {});
        let sink = import(&mut c);
        assert_eq!(sink.objects.len(), 1);
        let r: Vec<(u64, Option<&str>, &str)> = sink
            .rejected
            .iter()
            .map(|r| (r.line, r.anchor.as_deref(), r.message.as_str()))
            .collect();
        assert_eq!(
            r,
            [
                (2, None, "no anchor: column \"id\" is empty"),
                (3, None, "no anchor: column \"id\" is empty")
            ]
        );
    }

    #[test]
    fn invalid_utf8_rejects_the_row_and_names_the_column() {
        let bytes = b"id,name,skip\n1,Ann,\xFF\n2,M\xFCller,x\n3,Cy,z\n";
        let (_d, mut c) = with_bytes(bytes, |c| {
            c.columns.insert(
                "skip".into(),
                ColumnSpec {
                    ignore: true,
                    ..ColumnSpec::default()
                },
            );
        });
        let sink = import(&mut c);
        let anchors: Vec<&str> = sink.objects.iter().map(|o| o.anchor.as_str()).collect();
        assert_eq!(
            anchors,
            ["1", "3"],
            "bad bytes in an ignored column do not matter"
        );
        assert_eq!(
            sink.rejected,
            [RowError {
                source: "hr/people.csv".into(),
                line: 3,
                anchor: Some("2".into()),
                message: "column \"name\" is not valid UTF-8".into(),
            }]
        );
    }

    #[test]
    fn a_character_split_by_a_delimiter_is_invalid() {
        // Together the two fields would be a valid "é"; apart, neither is.
        let (_d, mut c) = with_bytes(b"id,a,b\n1,\xC3,\xA9\n2,\xC3\xA9,\n", |_| {});
        let sink = import(&mut c);
        assert_eq!(value(&c, &sink, 0, "a"), ["é"]);
        assert_eq!(sink.objects[0].anchor, "2");
        assert_eq!(sink.rejected.len(), 1);
        assert_eq!(sink.rejected[0].message, "column \"a\" is not valid UTF-8");
    }

    #[test]
    fn invalid_utf8_header_is_a_file_error() {
        let (_d, c) = with_bytes(b"id,Nachn\xE4me\n", |_| {});
        let msg = source_message(c.schema());
        assert!(
            msg.contains("header is not valid UTF-8 (column 2)"),
            "{msg}"
        );
        let (_d, c) = with_bytes(b"\xFF\xFEi\0d\0", |_| {});
        assert!(source_message(c.schema()).contains("UTF-16"));
    }

    #[test]
    fn empty_files_and_header_only() {
        for bytes in [&b""[..], b"\xEF\xBB\xBF", b"\n\n"] {
            let (_d, mut c) = with_bytes(bytes, |_| {});
            let msg = source_message(c.full_import(&mut Collect::default()));
            assert!(msg.contains("header row is required"), "{msg}");
        }
        let (_d, mut c) = with_bytes(b"id,name\r\n", |_| {});
        let sink = import(&mut c);
        assert!(sink.objects.is_empty() && sink.rejected.is_empty());
    }

    #[test]
    fn missing_file_is_an_io_error_with_the_written_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = CsvConnector::new(config(dir.path().join("nope.csv"), "id"));
        match c.full_import(&mut Collect::default()) {
            Err(ConnectorError::Io { path, source }) => {
                assert_eq!(path, "hr/people.csv");
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected an io error, got {other:?}"),
        }
    }

    #[test]
    fn header_without_the_anchor_is_a_file_error() {
        let (_d, c) = with_bytes(b"Id,name\n1,Ann\n", |_| {});
        let msg = source_message(c.schema());
        assert!(msg.contains("did you mean \"Id\""), "{msg}");
    }

    #[test]
    fn trailing_delimiter_and_padded_header_names() {
        let bytes = b"id; name;\n1; Ann;\n";
        let (_d, mut c) = with_bytes(bytes, |c| c.delimiter = b';');
        assert_eq!(c.schema().unwrap().names(), ["id", "name"]);
        let sink = import(&mut c);
        assert_eq!(value(&c, &sink, 0, "name"), ["Ann"]);
    }

    #[test]
    fn bad_delimiter_settings_are_refused() {
        let (_d, c) = with_bytes(b"id\n", |c| c.delimiter = b'"');
        assert!(source_message(c.schema()).contains("must differ"));
        let (_d, c) = with_bytes(b"id\n", |c| c.delimiter = 0xA7);
        assert!(source_message(c.schema()).contains("ASCII"));
    }

    /// A reader that hands out one byte per call, so that every CRLF and
    /// every run of breaks is split across reads.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn line_counter_finds_record_starts_for_any_line_ending() {
        let cases: [(&[u8], &[u64]); 6] = [
            (b"h\n1\n2\n", &[1, 2, 3]),
            (b"h\r\n1\r\n2", &[1, 2, 3]),
            (b"h\r1\r2\r", &[1, 2, 3]),
            (b"\n\nh\n\n1\r\n\r\n\r\n2\n", &[3, 5, 8]),
            (b"h\r\n\"a\r\n\r\nb\"\r\n2\r\n", &[1, 2, 5]),
            (b"h\n\"a\rb\nc\"\n2\n", &[1, 2, 5]),
        ];
        for (input, expected) in cases {
            for trickle in [false, true] {
                let source: Box<dyn Read> = if trickle {
                    Box::new(Trickle(input))
                } else {
                    Box::new(input)
                };
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(LineCounter::new(source));
                let mut record = csv::ByteRecord::new();
                let mut lines = Vec::new();
                while reader.read_byte_record(&mut record).unwrap() {
                    let start = record.position().unwrap().byte();
                    lines.push(reader.get_mut().line_at(start));
                }
                assert_eq!(
                    lines,
                    expected,
                    "{:?} trickle={trickle}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    /// Fingerprints every row, then fetches every fingerprinted row: the
    /// same objects and rejections as a full import, in the same order.
    fn print_then_fetch(c: &mut CsvConnector) -> Collect {
        let mut pass = Collect::default();
        c.fingerprints(&mut pass).unwrap();
        let places: Vec<RowPlace> = pass.prints.iter().map(|p| p.1).collect();
        let mut fetched = Collect::default();
        c.fetch(&places, &mut fetched).unwrap();
        assert_eq!(pass.marks.len(), 1);
        fetched.marks = pass.marks;
        fetched.rejected.splice(0..0, pass.rejected);
        fetched.objects.splice(0..0, pass.objects);
        fetched
    }

    #[test]
    fn fetched_rows_are_the_rows_a_full_import_reads() {
        let mut config = config(fixture("bom_crlf_multiline.csv"), "id");
        config.columns.insert(
            "born".into(),
            ColumnSpec {
                date: vec!["%d.%m.%Y".into()],
                ..ColumnSpec::default()
            },
        );
        let mut c = CsvConnector::new(config);
        let full = import(&mut c);
        let two = print_then_fetch(&mut c);
        let objects = |s: &Collect| {
            s.objects
                .iter()
                .map(|o| (o.anchor.clone(), o.line, o.print, o.attrs.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(objects(&two), objects(&full));
        assert!(full.objects.iter().all(|o| o.print.is_some()));
        assert_eq!(two.rejected, full.rejected);
        assert_eq!(two.marks, full.marks);
        let Some(SourceMark::Digest(d)) = full.marks.first() else {
            panic!("no digest: {:?}", full.marks);
        };
        assert_eq!(c.digest().unwrap(), Some(*d));
    }

    #[test]
    fn fetching_far_apart_rows_seeks_and_near_ones_read_through() {
        let mut bytes = b"id,name\r\n".to_vec();
        for i in 0..20_000 {
            bytes.extend_from_slice(format!("{i},\"name\r\n{i}\"\r\n").as_bytes());
        }
        let (_d, mut c) = with_bytes(&bytes, |_| {});
        let mut pass = Collect::default();
        c.fingerprints(&mut pass).unwrap();
        let wanted: Vec<RowPlace> = pass
            .prints
            .iter()
            .filter(|p| matches!(p.0.parse::<u32>(), Ok(n) if n % 997 < 3 || n > 19_990))
            .map(|p| p.1)
            .collect();
        let mut fetched = Collect::default();
        c.fetch(&wanted, &mut fetched).unwrap();
        let got: Vec<(String, u64)> = fetched
            .objects
            .iter()
            .map(|o| (o.anchor.clone(), o.line))
            .collect();
        let expected: Vec<(String, u64)> = pass
            .prints
            .iter()
            .filter(|p| wanted.iter().any(|w| w.at == p.1.at))
            .map(|p| (p.0.clone(), p.1.line))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(got.first(), Some(&("0".to_string(), 2)));
        assert_eq!(value(&c, &fetched, 1, "name"), ["name\r\n1"]);
    }

    #[test]
    fn a_file_changed_between_the_passes_fails_the_fetch() {
        let (d, mut c) = with_bytes(b"id,name\n1,Ann\n2,Bo\n", |_| {});
        let mut pass = Collect::default();
        c.fingerprints(&mut pass).unwrap();
        let places: Vec<RowPlace> = pass.prints.iter().map(|p| p.1).collect();
        std::fs::write(d.path().join("f.csv"), b"id,name\n1,Ann\n2,Cy\n").unwrap();
        let msg = source_message(c.fetch(&places, &mut Collect::default()));
        assert!(msg.contains("changed while it was read"), "{msg}");
        // A fetch needs the fingerprint pass it follows.
        assert!(c.fetch(&places, &mut Collect::default()).is_err());
    }

    #[test]
    fn rows_without_a_quick_anchor_are_converted_in_the_first_pass() {
        let (_d, mut c) = with_bytes(b"id,name\n1,Ann\n,Nobody\n3,Cy,extra\n", |_| {});
        let mut pass = Collect::default();
        c.fingerprints(&mut pass).unwrap();
        let anchors: Vec<&str> = pass.prints.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(anchors, ["1"]);
        let lines: Vec<u64> = pass.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4]);
    }

    #[test]
    fn the_rules_key_follows_the_columns_and_the_header() {
        let (_d, c) = with_bytes(b"id,name\n1,Ann\n", |_| {});
        let plain = c.digest().unwrap().unwrap();
        let (_d, c) = with_bytes(b"id,name\n1,Ann\n", |c| {
            c.columns.insert(
                "name".into(),
                ColumnSpec {
                    trim: false,
                    ..ColumnSpec::default()
                },
            );
        });
        let other_rules = c.digest().unwrap().unwrap();
        let (_d, c) = with_bytes(b"id,nom\n1,Ann\n", |_| {});
        let other_header = c.digest().unwrap().unwrap();
        assert_ne!(plain.rules, other_rules.rules);
        assert_ne!(plain.rules, other_header.rules);
        assert_eq!(plain.file, other_rules.file);
    }

    #[test]
    fn unterminated_quote_does_not_panic() {
        let (_d, mut c) = with_bytes(b"id,name\n1,\"open\n2,x\n", |_| {});
        let sink = import(&mut c);
        // The csv crate reads to the end of the file as one field.
        assert_eq!(sink.objects.len(), 1);
        assert_eq!(value(&c, &sink, 0, "name"), ["open\n2,x"]);
    }
}
