//! Seeded generator of realistic HR sources at any scale.
//!
//! [`generate`] writes the three HR sources of the bundled example
//! (`fixtures/hr/workday.csv`, `sap_hr.csv`, `contractors.db`) with the same
//! headers, encodings, delimiters, line endings and date formats, so the
//! example's rule files load generated data unchanged. The population is
//! shaped like the example: most people in Workday, about half of those also
//! in the subsidiary's SAP system (half of them with the Workday id, the rest
//! recognisable only by name and birth date under SAP's spelling), a quarter
//! contractors of whom some are or became employees, plus rehires, same-name
//! pairs and leavers arising at realistic rates.
//!
//! [`write_unkeyed`] describes the same people again, as a system without
//! their worker ids would, for measuring fuzzy joins (see [`unkeyed`]).
//!
//! Output depends only on `(people, seed)`: the random numbers come from a
//! SplitMix64 written out in this module, never from a library whose
//! algorithm might change. Records are produced and written one person at a
//! time; what is kept in memory is listed in [`people`].

mod calendar;
mod names;
mod noise;
mod org;
mod people;
pub mod rng;
#[cfg(test)]
mod tests;
mod unkeyed;

pub use noise::Written;
pub use people::{ContractorRow, People, Person, SapRow, WorkdayRow, people};
pub use unkeyed::{
    KNOWN_PER_MILLE, TRUTH_FILE, TRUTH_HEADER, UNKEYED_FILE, UNKEYED_HEADER, Unkeyed,
    UnkeyedSummary, unkeyed, write_unkeyed,
};

use crate::connector::sqlite_file::TableWriter;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

pub const WORKDAY_HEADER: [&str; 15] = [
    "Worker_ID",
    "Legal_First_Name",
    "Legal_Middle_Name",
    "Legal_Last_Name",
    "Preferred_First_Name",
    "Birth_Date",
    "Work_Email",
    "Department",
    "Job_Title",
    "Manager_ID",
    "Hire_Date",
    "Termination_Date",
    "Worker_Status",
    "Location",
    "Phone",
];

pub const SAP_HEADER: [&str; 14] = [
    "PERNR",
    "NACHN",
    "VORNA",
    "MIDNM",
    "GBDAT",
    "WORKDAY_ID",
    "ORGTX",
    "PLSTX",
    "VORGS",
    "EINDT",
    "AUSDT",
    "STAT2",
    "KOSTL",
    "TELNR",
];

pub const CONTRACTOR_COLUMNS: [&str; 12] = [
    "contractor_id",
    "given_name",
    "family_name",
    "birth_date",
    "email",
    "agency",
    "sponsor_worker_id",
    "start_date",
    "end_date",
    "status",
    "updated_at",
    "deleted",
];

/// The contractor table, exactly as `fixtures/hr/contractors.sql` creates it
/// (SQLite keeps this text in `sqlite_master`, and a test compares the two).
pub const CONTRACTOR_DDL: &str = "CREATE TABLE contractor (
    contractor_id TEXT PRIMARY KEY,
    given_name TEXT,
    family_name TEXT,
    birth_date TEXT,
    email TEXT,
    agency TEXT,
    sponsor_worker_id TEXT,
    start_date TEXT,
    end_date TEXT,
    status TEXT,
    updated_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
)";

/// The index a database that offers `updated_at` as a watermark keeps on it,
/// so that reading what changed does not scan the table.
pub const CONTRACTOR_INDEX: &str = "CREATE INDEX contractor_updated_at ON contractor (updated_at)";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenSummary {
    pub people: usize,
    pub workday_rows: usize,
    pub sap_rows: usize,
    pub contractor_rows: usize,
}

/// Writes `out/fixtures/hr/{workday.csv, sap_hr.csv, contractors.db}` for
/// `people` generated people, replacing files already there.
///
/// Worker_IDs keep their six digits up to about 1.19 million people (899,999
/// Workday rows); beyond that they simply grow a seventh digit.
pub fn generate(out: &Path, people: usize, seed: u64) -> io::Result<GenSummary> {
    let dir = out.join("fixtures").join("hr");
    fs::create_dir_all(&dir)?;
    let mut workday = WorkdayWriter::create(&dir.join("workday.csv"))?;
    let mut sap = SapWriter::create(&dir.join("sap_hr.csv"))?;
    let mut db = TableWriter::create(
        &dir.join("contractors.db"),
        &format!("{CONTRACTOR_DDL};\n{CONTRACTOR_INDEX};"),
        "contractor",
        CONTRACTOR_COLUMNS.len(),
    )
    .map_err(io::Error::other)?;
    let mut summary = GenSummary {
        people,
        ..GenSummary::default()
    };
    for person in self::people(people, seed) {
        for row in &person.workday {
            workday.write(row)?;
            summary.workday_rows += 1;
        }
        if let Some(row) = &person.sap {
            sap.write(row)?;
            summary.sap_rows += 1;
        }
        if let Some(row) = &person.contractor {
            db.insert(row).map_err(io::Error::other)?;
            summary.contractor_rows += 1;
        }
    }
    db.finish().map_err(io::Error::other)?;
    workday.finish()?;
    sap.finish()?;
    Ok(summary)
}

/// The Workday rows of a run, for benchmarks that want records without files.
pub fn workday_rows(people: usize, seed: u64) -> impl Iterator<Item = Vec<String>> {
    self::people(people, seed).flat_map(|p| p.workday.into_iter().map(Vec::from))
}

/// The SAP rows of a run (as Unicode text; the file holds them in Latin-1).
pub fn sap_rows(people: usize, seed: u64) -> impl Iterator<Item = Vec<String>> {
    self::people(people, seed).filter_map(|p| p.sap.map(Vec::from))
}

/// The contractor rows of a run; `None` is SQL NULL.
pub fn contractor_rows(people: usize, seed: u64) -> impl Iterator<Item = Vec<Option<String>>> {
    self::people(people, seed).filter_map(|p| p.contractor.map(Vec::from))
}

/// UTF-8 with a byte-order mark, comma, CRLF, quotes only where needed
/// (titles with commas, the location with a line break).
struct WorkdayWriter {
    csv: csv::Writer<File>,
}

impl WorkdayWriter {
    fn create(path: &Path) -> io::Result<WorkdayWriter> {
        let mut file = File::create(path)?;
        file.write_all(UTF8_BOM)?;
        let mut csv = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .buffer_capacity(1 << 16)
            .from_writer(file);
        csv.write_record(WORKDAY_HEADER)?;
        Ok(WorkdayWriter { csv })
    }

    fn write(&mut self, row: &WorkdayRow) -> io::Result<()> {
        self.csv.write_record(row)?;
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.csv.flush()
    }
}

/// ISO-8859-1 bytes, `;`, LF.
struct SapWriter {
    csv: csv::Writer<File>,
    fields: Vec<Vec<u8>>,
}

impl SapWriter {
    fn create(path: &Path) -> io::Result<SapWriter> {
        let mut csv = csv::WriterBuilder::new()
            .delimiter(b';')
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(1 << 16)
            .from_writer(File::create(path)?);
        csv.write_record(SAP_HEADER)?;
        Ok(SapWriter {
            csv,
            fields: vec![Vec::new(); SAP_HEADER.len()],
        })
    }

    fn write(&mut self, row: &SapRow) -> io::Result<()> {
        for (buf, field) in self.fields.iter_mut().zip(row) {
            latin1_bytes(field, buf)?;
        }
        self.csv.write_record(&self.fields)?;
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.csv.flush()
    }
}

/// Encodes into `buf`; a character outside Latin-1 is a bug in the name
/// styling, reported rather than written as a silent `?`.
fn latin1_bytes(s: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{c:?} in {s:?} has no ISO-8859-1 encoding"),
            )
        })?;
        buf.push(b);
    }
    Ok(())
}
