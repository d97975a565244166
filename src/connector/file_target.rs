//! Targets that are files and tables other programs read: a delimited file
//! rewritten whole after each export, and a SQLite table written row by row.
//! Both key an account by its name; the name is its id. A multi-valued
//! attribute is written as its values joined by `|`.

use super::sqlite_file::AccountTable;
use super::target::{
    Applied, Attrs, CsvTargetConfig, ExportError, ExportOp, RefBy, RemoteObject, SqlTargetConfig,
    Target, apply_changes,
};
use std::collections::BTreeMap;

const MULTI_SEP: &str = "|";

fn join(values: &[String]) -> String {
    values.join(MULTI_SEP)
}

fn split(text: &str) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split(MULTI_SEP).map(str::to_string).collect()
    }
}

/// A row as a remote object: its key is its id, its name, and the value of
/// the key column.
fn remote(key_column: &str, key: String, mut attrs: Attrs) -> RemoteObject {
    attrs.insert(key_column.to_string(), vec![key.clone()]);
    RemoteObject {
        id: key.clone(),
        name: key,
        attrs,
    }
}

/// A delimited file: read when connecting, changed in memory, written to a
/// temporary file and renamed over the old one at [`Target::finish`], so a
/// reader never sees half a file.
pub struct CsvTarget {
    cfg: CsvTargetConfig,
    rows: Option<BTreeMap<String, Attrs>>,
    dirty: bool,
}

impl CsvTarget {
    pub fn new(cfg: CsvTargetConfig) -> CsvTarget {
        CsvTarget {
            cfg,
            rows: None,
            dirty: false,
        }
    }

    fn read(&self) -> Result<BTreeMap<String, Attrs>, ExportError> {
        let mut out = BTreeMap::new();
        let file = match std::fs::File::open(&self.cfg.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(ExportError::Transient(format!("{}: {e}", self.cfg.display)));
            }
        };
        let mut r = csv::ReaderBuilder::new()
            .delimiter(self.cfg.delimiter)
            .from_reader(file);
        let bad = |e: csv::Error| ExportError::Transient(format!("{}: {e}", self.cfg.display));
        let header: Vec<String> = r
            .headers()
            .map_err(bad)?
            .iter()
            .map(str::to_string)
            .collect();
        let Some(key_at) = header.iter().position(|h| *h == self.cfg.key) else {
            return Err(ExportError::Transient(format!(
                "{}: no column {:?} in its header",
                self.cfg.display, self.cfg.key
            )));
        };
        for rec in r.records() {
            let rec = rec.map_err(bad)?;
            let mut attrs = Attrs::new();
            for (i, v) in rec.iter().enumerate() {
                if i != key_at
                    && let Some(h) = header.get(i)
                    && !v.is_empty()
                {
                    attrs.insert(h.clone(), split(v));
                }
            }
            out.insert(rec.get(key_at).unwrap_or_default().to_string(), attrs);
        }
        Ok(out)
    }

    fn rows(&mut self) -> Result<&mut BTreeMap<String, Attrs>, ExportError> {
        if self.rows.is_none() {
            self.rows = Some(self.read()?);
        }
        self.rows
            .as_mut()
            .ok_or_else(|| ExportError::Transient("file not read".into()))
    }

    fn write(&self, rows: &BTreeMap<String, Attrs>) -> std::io::Result<()> {
        if let Some(dir) = self.cfg.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.cfg.path.with_extension("tmp");
        {
            let mut w = csv::WriterBuilder::new()
                .delimiter(self.cfg.delimiter)
                .from_path(&tmp)?;
            let mut header = vec![self.cfg.key.as_str()];
            header.extend(self.cfg.columns.iter().map(String::as_str));
            w.write_record(&header)?;
            for (key, attrs) in rows {
                let mut rec = vec![key.clone()];
                for c in &self.cfg.columns {
                    rec.push(attrs.get(c).map(|v| join(v)).unwrap_or_default());
                }
                w.write_record(&rec)?;
            }
            w.flush()?;
        }
        std::fs::rename(&tmp, &self.cfg.path)
    }
}

impl Target for CsvTarget {
    fn kind(&self) -> &'static str {
        "csv"
    }

    fn reference_by(&self) -> RefBy {
        RefBy::Name
    }

    fn connect(&mut self) -> Result<(), ExportError> {
        self.rows = Some(self.read()?);
        Ok(())
    }

    fn find(&mut self, attr: &str, value: &str) -> Result<Option<RemoteObject>, ExportError> {
        let key = self.cfg.key.clone();
        let rows = self.rows()?;
        let hit = rows.iter().find(|(k, a)| {
            if attr == key {
                k.as_str() == value
            } else {
                a.get(attr).is_some_and(|v| v.iter().any(|x| x == value))
            }
        });
        Ok(hit.map(|(k, a)| remote(&key, k.clone(), a.clone())))
    }

    fn apply(&mut self, op: &ExportOp) -> Result<Applied, ExportError> {
        let key = self.cfg.key.clone();
        let rows = self.rows()?;
        let applied = match op {
            ExportOp::Create { name, attrs } => {
                if rows.contains_key(name) {
                    return Err(ExportError::Exists(name.clone()));
                }
                let mut a = attrs.clone();
                a.remove(&key);
                rows.insert(name.clone(), a);
                Applied {
                    id: name.clone(),
                    name: name.clone(),
                }
            }
            ExportOp::Update {
                id,
                rename,
                changes,
                ..
            } => {
                let Some(mut row) = rows.remove(id) else {
                    return Err(ExportError::NotFound(id.clone()));
                };
                apply_changes(&mut row, changes);
                row.remove(&key);
                let to = rename.clone().unwrap_or_else(|| id.clone());
                if to != *id && rows.contains_key(&to) {
                    rows.insert(id.clone(), row);
                    return Err(ExportError::Exists(to));
                }
                rows.insert(to.clone(), row);
                Applied {
                    id: to.clone(),
                    name: to,
                }
            }
            ExportOp::Delete { id, .. } => {
                if rows.remove(id).is_none() {
                    return Err(ExportError::NotFound(id.clone()));
                }
                Applied {
                    id: id.clone(),
                    name: id.clone(),
                }
            }
        };
        self.dirty = true;
        Ok(applied)
    }

    fn read_all(&mut self, each: &mut dyn FnMut(RemoteObject)) -> Result<(), ExportError> {
        for (k, a) in self.read()? {
            each(remote(&self.cfg.key, k, a));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        if !self.dirty {
            return Ok(());
        }
        let rows = self.rows.take().unwrap_or_default();
        let r = self
            .write(&rows)
            .map_err(|e| ExportError::Transient(format!("{}: {e}", self.cfg.display)));
        self.rows = Some(rows);
        self.dirty = r.is_err();
        r
    }
}

/// A table in a SQLite database an application reads. The table must
/// exist with the key column and the flows' columns; each operation is
/// its own statement (and so its own transaction). The SQL is
/// `sqlite_file::AccountTable`'s.
pub struct SqlTarget {
    cfg: SqlTargetConfig,
    table: Option<AccountTable>,
    /// The columns the application fills that other targets read back:
    /// read, never written.
    read_back: Option<AccountTable>,
}

impl SqlTarget {
    pub fn new(cfg: SqlTargetConfig) -> SqlTarget {
        SqlTarget {
            cfg,
            table: None,
            read_back: None,
        }
    }

    fn table(&self) -> Result<&AccountTable, ExportError> {
        self.table
            .as_ref()
            .ok_or_else(|| ExportError::Transient(format!("{}: not connected", self.cfg.display)))
    }

    fn row(&self, key: &str) -> Result<Option<Attrs>, ExportError> {
        Ok(self.table()?.row(key)?.map(|values| {
            self.cfg
                .columns
                .iter()
                .zip(values)
                .filter_map(|(c, v)| v.filter(|v| !v.is_empty()).map(|v| (c.clone(), split(&v))))
                .collect()
        }))
    }

    /// The flows' columns of `attrs`, in the table's order; absent ones NULL.
    fn values(&self, attrs: &Attrs) -> Vec<Option<String>> {
        self.cfg
            .columns
            .iter()
            .map(|c| attrs.get(c).map(|v| join(v)))
            .collect()
    }
}

impl Target for SqlTarget {
    fn kind(&self) -> &'static str {
        "sql"
    }

    fn reference_by(&self) -> RefBy {
        RefBy::Name
    }

    fn connect(&mut self) -> Result<(), ExportError> {
        let c = &self.cfg;
        self.table = Some(AccountTable::open(
            &c.path, &c.display, &c.table, &c.key, &c.columns,
        )?);
        if !c.read_back.is_empty() {
            self.read_back = Some(AccountTable::open(
                &c.path,
                &c.display,
                &c.table,
                &c.key,
                &c.read_back,
            )?);
        }
        Ok(())
    }

    fn find(&mut self, attr: &str, value: &str) -> Result<Option<RemoteObject>, ExportError> {
        if attr != self.cfg.key && !self.cfg.columns.iter().any(|c| c == attr) {
            return Err(ExportError::Rejected(format!(
                "table {:?} has no column {attr:?}",
                self.cfg.table
            )));
        }
        match self.table()?.keys_where(attr, value)?.as_slice() {
            [] => Ok(None),
            [k] => Ok(self
                .row(k)?
                .map(|attrs| remote(&self.cfg.key, k.clone(), attrs))),
            _ => Err(ExportError::Rejected(format!(
                "{attr} = {value:?} matches several rows of {:?}",
                self.cfg.table
            ))),
        }
    }

    fn apply(&mut self, op: &ExportOp) -> Result<Applied, ExportError> {
        let table = self.table()?;
        let to = match op {
            ExportOp::Create { name, attrs } => {
                if table.exists(name)? {
                    return Err(ExportError::Exists(name.clone()));
                }
                table.insert(name, self.values(attrs))?;
                name.clone()
            }
            ExportOp::Update {
                id,
                rename,
                changes,
                ..
            } => {
                let Some(mut row) = self.row(id)? else {
                    return Err(ExportError::NotFound(id.clone()));
                };
                let to = rename.clone().unwrap_or_else(|| id.clone());
                if to != *id && table.exists(&to)? {
                    return Err(ExportError::Exists(to));
                }
                apply_changes(&mut row, changes);
                if table.update(id, &to, self.values(&row))? == 0 {
                    return Err(ExportError::NotFound(id.clone()));
                }
                to
            }
            ExportOp::Delete { id, .. } => {
                if table.delete(id)? == 0 {
                    return Err(ExportError::NotFound(id.clone()));
                }
                id.clone()
            }
        };
        Ok(Applied {
            id: to.clone(),
            name: to,
        })
    }

    fn read_all(&mut self, each: &mut dyn FnMut(RemoteObject)) -> Result<(), ExportError> {
        for k in self.table()?.keys()? {
            if let Some(mut attrs) = self.row(&k)? {
                if let Some(r) = &self.read_back
                    && let Some(values) = r.row(&k)?
                {
                    for (c, v) in self.cfg.read_back.iter().zip(values) {
                        if let Some(v) = v.filter(|v| !v.is_empty()) {
                            attrs.entry(c.clone()).or_insert_with(|| split(&v));
                        }
                    }
                }
                each(remote(&self.cfg.key, k, attrs));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::target::Change;

    use crate::connector::target::attrs_of as attrs;

    #[test]
    fn a_file_target_creates_renames_updates_and_deletes_then_writes_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("out/badges.csv");
        let mut t = CsvTarget::new(CsvTargetConfig {
            path: path.clone(),
            display: "badges.csv".into(),
            delimiter: b';',
            key: "login".into(),
            columns: vec!["name".into(), "phones".into()],
        });
        t.connect().expect("connect");
        let create = |n: &str| ExportOp::Create {
            name: n.into(),
            attrs: attrs(&[("name", &["Ann, Lee"]), ("phones", &["1", "2"])]),
        };
        t.apply(&create("alee")).expect("create");
        assert_eq!(
            t.apply(&create("alee")),
            Err(ExportError::Exists("alee".into()))
        );
        t.apply(&create("bob")).expect("create");
        let a = t
            .apply(&ExportOp::Update {
                id: "alee".into(),
                name: "alee".into(),
                rename: Some("ann.lee".into()),
                changes: vec![Change::Remove("phones".into(), vec!["1".into()])],
            })
            .expect("rename");
        assert_eq!(a.id, "ann.lee");
        t.apply(&ExportOp::Delete {
            id: "bob".into(),
            name: "bob".into(),
        })
        .expect("delete");
        assert!(!path.exists(), "nothing is written before finish");
        t.finish().expect("finish");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "login;name;phones\nann.lee;Ann, Lee;2\n");
        let mut seen = Vec::new();
        t.read_all(&mut |o| seen.push(o)).expect("read_all");
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].attrs,
            attrs(&[
                ("login", &["ann.lee"]),
                ("name", &["Ann, Lee"]),
                ("phones", &["2"])
            ])
        );
    }
}
