//! Import steps: how an agent's source is read (in full, not at all when a
//! file is unchanged, by row fingerprints, from a watermark), and the
//! staging of what it reports into the connector space. The connector reads
//! on one thread and the store stages on another; the step commits only when
//! the connector says it read the source to the end.

use crate::app::{App, AppError, ImportHow, ImportMode, ImportReport, Result, source_name, stamp};
use crate::connector::{
    self, ImportSink, ImportedObject, RowError, RowPlace, SourceDigest, SourceMark,
};
use crate::model::{RunId, Schema};
use crate::rules;
use crate::store::{ImportCounts, Printed, StepErrorRow, fault_point};
use chrono::{DateTime, Utc};
use std::sync::mpsc;
use tracing::{debug, info};

/// Forwards what a connector reads to the staging thread in batches, so
/// parsing and SQLite writes overlap.
enum Msg {
    Items(Batch),
    Reject(RowError),
    Mark(SourceMark),
    /// The fingerprint pass is over; the reader waits for the rows to fetch.
    Printed,
    /// The source was read to the end: only now may the import commit.
    End,
}

/// Items in source order. A batch holds either items or the prints of
/// fingerprinted rows, kept apart and packed: a row compare sends one for
/// each of a million rows, and every byte of a batch is memory the kernel
/// must hand over fresh (zeroed) the first time it is touched. Their
/// anchors sit in one buffer: a million rows are a million small strings
/// otherwise, made on one thread and freed on the other. Emptied batches go
/// back to the reader (see [`ChannelSink::flush`]).
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    prints: Vec<Print>,
    anchors: String,
    /// Where the first print's row is; the others are counted from it.
    base: RowPlace,
}

enum Item {
    Object(Box<Encoded>),
    Gone(Box<(String, u64)>),
}

/// A fingerprinted row: its anchor is `anchors[start..start + len]`, and
/// its place is `at` bytes and `line` lines past the batch's `base`.
struct Print {
    start: u32,
    len: u32,
    at: u32,
    line: u32,
    print: u64,
}

/// An object in its stored form, encoded on the reading thread so the
/// staging thread only talks to SQLite.
struct Encoded {
    anchor: String,
    json: String,
    hash: u64,
    print: Option<u64>,
    line: u64,
}

const BATCH: usize = 4096;

impl Batch {
    fn new() -> Batch {
        Batch {
            items: Vec::with_capacity(BATCH),
            prints: Vec::with_capacity(BATCH),
            anchors: String::with_capacity(BATCH * 12),
            base: RowPlace::default(),
        }
    }

    fn len(&self) -> usize {
        self.items.len() + self.prints.len()
    }

    /// Packs a print, unless its offsets from the batch's first one do not
    /// fit (a batch of very long rows): then the caller starts a new batch.
    fn print(&mut self, anchor: &str, place: RowPlace) -> bool {
        if self.prints.is_empty() {
            self.base = place;
        }
        let fits = |a: u64, b: u64| a.checked_sub(b).and_then(|d| u32::try_from(d).ok());
        let (Some(at), Some(line), Ok(start), Ok(len)) = (
            fits(place.at, self.base.at),
            fits(place.line, self.base.line),
            u32::try_from(self.anchors.len()),
            u32::try_from(anchor.len()),
        ) else {
            return false;
        };
        if start.checked_add(len).is_none() {
            return false;
        }
        self.anchors.push_str(anchor);
        self.prints.push(Print {
            start,
            len,
            at,
            line,
            print: place.print,
        });
        true
    }

    /// A packed print's anchor and place.
    fn unpack(&self, p: &Print) -> (&str, RowPlace) {
        let start = p.start as usize;
        let anchor = self
            .anchors
            .get(start..start + p.len as usize)
            .unwrap_or_default();
        let place = RowPlace {
            at: self.base.at + u64::from(p.at),
            line: self.base.line + u64::from(p.line),
            print: p.print,
        };
        (anchor, place)
    }
}

struct ChannelSink {
    tx: mpsc::SyncSender<Msg>,
    /// Batches the staging thread has emptied.
    spare: mpsc::Receiver<Batch>,
    schema: Schema,
    batch: Batch,
    closed: bool,
}

impl ChannelSink {
    /// Sends the batch on and goes on in an emptied one when the staging
    /// thread has returned one: its pages are already the process's, where
    /// a new batch's must be faulted in and zeroed by the kernel.
    fn flush(&mut self) {
        if self.batch.len() > 0 && !self.closed {
            let next = self.spare.try_recv().unwrap_or_else(|_| Batch::new());
            let b = std::mem::replace(&mut self.batch, next);
            self.closed = self.tx.send(Msg::Items(b)).is_err();
        }
    }

    fn push(&mut self, item: Item) {
        if !self.batch.prints.is_empty() {
            self.flush();
        }
        self.batch.items.push(item);
        if self.batch.items.len() >= BATCH {
            self.flush();
        }
    }

    fn send(&mut self, msg: Msg) {
        self.flush();
        if !self.closed {
            self.closed = self.tx.send(msg).is_err();
        }
    }
}

impl ImportSink for ChannelSink {
    fn object(&mut self, object: ImportedObject) {
        self.push(Item::Object(Box::new(Encoded {
            json: crate::model::json::record_to_json(&object.attrs, &self.schema),
            hash: object.attrs.content_hash(&self.schema),
            anchor: object.anchor,
            print: object.print,
            line: object.line,
        })));
    }
    fn reject(&mut self, error: RowError) {
        self.send(Msg::Reject(error));
    }
    fn print(&mut self, anchor: &str, place: RowPlace) {
        if !self.batch.items.is_empty() {
            self.flush();
        }
        if !self.batch.print(anchor, place) {
            self.flush();
            // An empty batch takes any print whose anchor is under 4 GiB
            // (as the space holds anchors): its offsets are all zero.
            if !self.batch.print(anchor, place) {
                tracing::warn!(
                    line = place.line,
                    "An anchor of 4 GiB or more: row not compared."
                );
            }
        }
        if self.batch.prints.len() >= BATCH {
            self.flush();
        }
    }
    fn gone(&mut self, anchor: String, line: u64) {
        self.push(Item::Gone(Box::new((anchor, line))));
    }
    fn mark(&mut self, mark: SourceMark) {
        self.send(Msg::Mark(mark));
    }
}

/// How one import goes, and why when it reads more than asked.
struct ImportPlan {
    how: ImportHow,
    watermark: Option<String>,
    note: Option<String>,
}

impl App {
    /// An import of one agent into its connector space, as one step.
    pub fn import(
        &mut self,
        agent_name: &str,
        mode: ImportMode,
        run: RunId,
        ordinal: usize,
        now: DateTime<Utc>,
    ) -> Result<ImportReport> {
        let Some(agent) = self.rules.agent(agent_name).cloned() else {
            return Err(AppError::Usage(format!(
                "no agent {agent_name:?}; agents are: {}",
                self.rules.agent_names().join(", ")
            )));
        };
        let verb = match mode {
            ImportMode::Full => "import",
            ImportMode::Delta => "delta-import",
        };
        self.store.map_reads(mode == ImportMode::Delta)?;
        let step = self.store.begin_step(
            run,
            ordinal,
            &format!("{verb} {agent_name}"),
            Some(agent_name),
            &stamp(now),
        )?;
        let mut conn = connector::open(&agent.source);
        let fail = |app: &mut App, e: connector::ConnectorError| -> Result<ImportReport> {
            let message = e.to_string();
            app.store.fail_step(step, &message, &stamp(Utc::now()))?;
            Err(AppError::Import {
                agent: agent_name.to_string(),
                message,
            })
        };
        let schema = match conn.schema() {
            Ok(s) => s,
            Err(e) => return fail(self, e),
        };
        let plan = match self.import_plan(&agent, conn.as_ref(), mode)? {
            Ok(p) => p,
            Err(e) => return fail(self, e),
        };
        if let Some(note) = &plan.note {
            info!(agent = agent_name, how = plan.how.as_str(), "{note}");
        }
        if plan.how == ImportHow::Unchanged {
            return self.unchanged(agent_name, mode, plan, run, step);
        }
        let how = plan.how;
        let (tx_send, rx) = mpsc::sync_channel::<Msg>(match how {
            // Fingerprints are small, and the staging thread reads the
            // whole connector space before it takes the first: the reader
            // must be able to run far ahead.
            ImportHow::RowCompare => 512,
            _ => 8,
        });
        let (want_send, want_recv) = mpsc::channel::<Vec<RowPlace>>();
        let (spare_send, spare_recv) = mpsc::channel::<Batch>();
        let watermark = plan.watermark.clone();
        let (result, staged) = std::thread::scope(|scope| {
            let reader_schema = schema.clone();
            let reader = scope.spawn(move || {
                let mut sink = ChannelSink {
                    tx: tx_send,
                    spare: spare_recv,
                    schema: reader_schema,
                    batch: Batch::new(),
                    closed: false,
                };
                let r = match (how, watermark) {
                    (ImportHow::RowCompare, _) => conn.fingerprints(&mut sink).and_then(|()| {
                        sink.send(Msg::Printed);
                        match want_recv.recv() {
                            Ok(places) => conn.fetch(&places, &mut sink),
                            // The staging side stopped; it says why.
                            Err(_) => Ok(()),
                        }
                    }),
                    (ImportHow::Watermark, Some(w)) => conn.changes_since(&w, &mut sink),
                    _ => conn.full_import(&mut sink),
                };
                if r.is_ok() {
                    sink.send(Msg::End);
                }
                r
            });
            let staged = self.stage(
                &agent.name,
                &schema,
                how,
                (rx, spare_send),
                want_send,
                (run, step),
            );
            let result = reader.join();
            (result, staged)
        });
        let connector_result = match result {
            Ok(r) => r,
            Err(_) => Err(connector::ConnectorError::Unsupported(
                "a connector that panicked",
            )),
        };
        match (connector_result, staged) {
            (Ok(()), Ok(Some(counts))) => {
                let (counts, rejected) = counts;
                Ok(ImportReport {
                    agent: agent_name.to_string(),
                    run,
                    mode,
                    how,
                    note: plan.note,
                    counts,
                    rejected,
                })
            }
            (Err(e), _) => fail(self, e),
            (Ok(()), Ok(None)) => {
                let message = "the import stopped before the source was read to the end";
                self.store.fail_step(step, message, &stamp(Utc::now()))?;
                Err(AppError::Import {
                    agent: agent_name.to_string(),
                    message: message.into(),
                })
            }
            (Ok(()), Err(e)) => {
                // The step's own transaction is gone; record why if the
                // store still takes a write.
                let _ = self
                    .store
                    .fail_step(step, &e.to_string(), &stamp(Utc::now()));
                Err(e)
            }
        }
    }

    /// Decides how an import reads its source. A file is compared whole
    /// whatever the mode (it is a full snapshot, so a row it lacks is a
    /// delete): skipped when its digest is the last import's, compared by
    /// row fingerprints when only rows changed, read in full when the rules
    /// or the header changed. A SQL source reads from its watermark on a
    /// delta import when it has one taken under the same rules.
    fn import_plan(
        &self,
        agent: &rules::Agent,
        conn: &dyn connector::Connector,
        mode: ImportMode,
    ) -> Result<std::result::Result<ImportPlan, connector::ConnectorError>> {
        let marks = self.store.source_marks(&agent.name)?;
        let full = |note: Option<String>| ImportPlan {
            how: ImportHow::Full,
            watermark: None,
            note,
        };
        // Without a digest from the last import there is nothing to compare
        // the file with, and a full read records one.
        if let Some(before) = marks.digest.as_deref().and_then(SourceDigest::parse) {
            let t = std::time::Instant::now();
            let digest = match conn.digest() {
                Ok(d) => d,
                Err(e) => return Ok(Err(e)),
            };
            debug!(
                agent = %agent.name,
                ms = t.elapsed().as_millis() as u64,
                "Source digest taken."
            );
            if let Some(now) = digest {
                return Ok(Ok(if before == now {
                    ImportPlan {
                        how: ImportHow::Unchanged,
                        watermark: None,
                        note: None,
                    }
                } else if before.rules == now.rules {
                    ImportPlan {
                        how: ImportHow::RowCompare,
                        watermark: None,
                        note: None,
                    }
                } else {
                    full(Some(
                        "The rules or the file's header changed since the last import: every row is converted again."
                            .into(),
                    ))
                }));
            }
        }
        if mode == ImportMode::Full || matches!(agent.source, connector::Source::Csv(_)) {
            return Ok(Ok(full(None)));
        }
        if let connector::Source::Sql(c) = &agent.source
            && c.delta.is_none()
        {
            return Ok(Ok(full(Some(
                "No [agent.delta]: a delta import reads every row and compares it with the connector space."
                    .into(),
            ))));
        }
        Ok(Ok(match marks.watermark {
            None => full(Some(
                "No watermark yet: this import reads every row and records one.".into(),
            )),
            Some(w) => match conn.resumes_from(&w) {
                Ok(()) => ImportPlan {
                    how: ImportHow::Watermark,
                    watermark: Some(w),
                    note: None,
                },
                Err(why) => full(Some(format!(
                    "{why}: this import reads every row and records a new watermark."
                ))),
            },
        }))
    }

    /// Records an import that found its file unchanged: nothing staged.
    fn unchanged(
        &mut self,
        agent: &str,
        mode: ImportMode,
        plan: ImportPlan,
        run: RunId,
        step: i64,
    ) -> Result<ImportReport> {
        let live = self.store.live_objects(agent)?;
        let counts = ImportCounts {
            unchanged: u64::try_from(live).unwrap_or(0),
            ..ImportCounts::default()
        };
        let tx = self.store.begin()?;
        tx.finish_step(
            step,
            "success",
            &step_counters(&counts, plan.how),
            None,
            &[],
            &stamp(Utc::now()),
        )?;
        fault_point("import-before-commit");
        tx.commit()?;
        info!(
            agent,
            how = plan.how.as_str(),
            unchanged = counts.unchanged,
            "Import finished: the file is the one the last import read."
        );
        Ok(ImportReport {
            agent: agent.to_string(),
            run,
            mode,
            how: plan.how,
            note: plan.note,
            counts,
            rejected: Vec::new(),
        })
    }

    /// Stages what arrives on `rx`; commits only when the connector read
    /// the whole source (it says so with [`Msg::End`]). In a row compare,
    /// the rows whose fingerprints differ go back through `want` when the
    /// fingerprint pass ends, and come back as objects.
    fn stage(
        &mut self,
        agent: &str,
        schema: &Schema,
        how: ImportHow,
        (rx, spare): (mpsc::Receiver<Msg>, mpsc::Sender<Batch>),
        want: mpsc::Sender<Vec<RowPlace>>,
        (run, step): (RunId, i64),
    ) -> Result<Option<(ImportCounts, Vec<StepErrorRow>)>> {
        let source = source_name(&self.rules, agent);
        let t0 = std::time::Instant::now();
        // A watermark read sees only what changed, so the guard measures its
        // deletes against the space as it stands; a full compare sees it all.
        let space_before = match how {
            ImportHow::Watermark => {
                Some(u64::try_from(self.store.live_objects(agent)?).unwrap_or(0))
            }
            _ => None,
        };
        let guard = self.rules.metaverse.guard;
        let allowed = self.allow_deletes;
        let space = match how {
            ImportHow::Watermark => None,
            _ => Some(self.store.reader()?.space(agent)?),
        };
        let tx = self.store.begin()?;
        let mut stager = match space {
            None => tx.delta_stager(agent, schema)?,
            Some(space) => tx.stager(agent, schema, space)?,
        };
        let t_load = t0.elapsed();
        let mut rejected = Vec::new();
        // Rejected rows the stager never counted as read.
        let mut unread_rejects = 0u64;
        let mut wanted: Vec<RowPlace> = Vec::new();
        let mut want = Some(want);
        let mut fetching = false;
        let mut marks = Vec::new();
        let mut ended = false;
        let mut items = 0u64;
        let duplicate = |anchor: &str, line: u64, first_line: u64| StepErrorRow {
            kind: "rejected-row".into(),
            agent: Some(agent.to_string()),
            anchor: Some(anchor.to_string()),
            source: Some(source.clone()),
            line: Some(line as i64),
            message: format!(
                "duplicate anchor {anchor:?} (first on line {first_line}); row skipped"
            ),
        };
        let counted = |items: &mut u64| {
            *items += 1;
            if items.is_multiple_of(500_000) {
                info!(agent, items, "Import in progress.");
            }
            if *items == 1000 {
                fault_point("import-mid");
            }
        };
        for msg in rx {
            match msg {
                Msg::Reject(e) => {
                    if !fetching {
                        unread_rejects += 1;
                    }
                    rejected.push(StepErrorRow {
                        kind: "rejected-row".into(),
                        agent: Some(agent.to_string()),
                        anchor: e.anchor.clone(),
                        source: Some(e.source.clone()),
                        line: Some(e.line as i64),
                        message: e.message.clone(),
                    });
                }
                Msg::Items(mut batch) => {
                    // Stopping here drops the transaction: nothing of the step stays.
                    if crate::shutdown::requested() {
                        return Err(AppError::Stopped);
                    }
                    for item in batch.items.drain(..) {
                        match item {
                            Item::Object(o) if fetching => {
                                stager.fetched(&o.anchor, &o.json, o.hash, o.print, o.line)?
                            }
                            Item::Object(o) => {
                                if o.anchor.is_empty() {
                                    continue;
                                }
                                if let Err(crate::store::StageRefusal::Duplicate { first_line }) =
                                    stager.object_encoded(
                                        &o.anchor, &o.json, o.hash, o.print, o.line,
                                    )?
                                {
                                    rejected.push(duplicate(&o.anchor, o.line, first_line));
                                }
                            }
                            Item::Gone(gone) => stager.gone(&gone.0, gone.1)?,
                        }
                        counted(&mut items);
                    }
                    for p in &batch.prints {
                        let (anchor, place) = batch.unpack(p);
                        match stager.print(anchor, place.print, place.line)? {
                            Printed::Unchanged => {}
                            Printed::Wanted => wanted.push(place),
                            Printed::Duplicate { first_line } => {
                                rejected.push(duplicate(anchor, place.line, first_line))
                            }
                        }
                        counted(&mut items);
                    }
                    batch.prints.clear();
                    batch.anchors.clear();
                    // The reader may be done; then the batch is freed here.
                    let _ = spare.send(batch);
                }
                Msg::Mark(m) => marks.push(m),
                Msg::Printed => {
                    fetching = true;
                    debug!(
                        agent,
                        wanted = wanted.len(),
                        ms = t0.elapsed().as_millis() as u64,
                        "Rows compared by fingerprint."
                    );
                    wanted.sort_unstable_by_key(|p| p.at);
                    if let Some(w) = want.take() {
                        let _ = w.send(std::mem::take(&mut wanted));
                    }
                }
                Msg::End => ended = true,
            }
        }
        if !ended {
            return Ok(None);
        }
        let t_read = t0.elapsed();
        let mut counts = match how {
            ImportHow::Watermark => stager.finish_delta()?,
            _ => stager.finish_full()?,
        };
        counts.read += unread_rejects;
        counts.rejected = rejected.len() as u64;
        let space = space_before.unwrap_or(counts.unchanged + counts.updates + counts.deletes);
        let what = format!(
            "stage {} deletes of {space} {agent} objects",
            counts.deletes
        );
        if !guard.allows(counts.deletes, space, allowed) {
            return Err(AppError::Guard(crate::app::guard_message(
                &format!("{what} (an empty or cut-short source?)"),
                &guard,
                counts.deletes,
            )));
        }
        if !guard.allows(counts.deletes, space, None) {
            let detail =
                crate::app::allowed_detail("import", &what, counts.deletes, &guard, allowed);
            tx.audit(
                &crate::audit::AuditEntry::now(crate::audit::AuditKind::DeletesAllowed, Some(run))
                    .target(agent)
                    .detail(detail),
            )?;
        }
        // Whether the import staged most of the space (a first import):
        // its change records are then listed in one walk of the space.
        let staged = counts.adds + counts.updates + counts.deletes;
        tx.record_import_changes(step, agent, staged * 2 >= (space + counts.adds).max(1))?;
        for m in &marks {
            match m {
                SourceMark::Digest(d) => tx.set_source_digest(agent, Some(&d.to_text()))?,
                SourceMark::Watermark(w) => tx.set_watermark(agent, Some(w))?,
            }
        }
        tx.finish_step(
            step,
            "success",
            &step_counters(&counts, how),
            None,
            &rejected,
            &stamp(Utc::now()),
        )?;
        fault_point("import-before-commit");
        let t_write = t0.elapsed();
        tx.commit()?;
        info!(
            agent,
            how = how.as_str(),
            load_ms = t_load.as_millis() as u64,
            read_ms = (t_read - t_load).as_millis() as u64,
            write_ms = (t_write - t_read).as_millis() as u64,
            commit_ms = (t0.elapsed() - t_write).as_millis() as u64,
            adds = counts.adds,
            updates = counts.updates,
            deletes = counts.deletes,
            unchanged = counts.unchanged,
            rejected = counts.rejected,
            "Import finished."
        );
        Ok(Some((counts, rejected)))
    }
}

/// An import's counters as the step records them, with how it read.
fn step_counters(counts: &ImportCounts, how: ImportHow) -> serde_json::Value {
    let mut v = serde_json::to_value(counts).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("how".into(), serde_json::Value::from(how.as_str()));
    }
    v
}
