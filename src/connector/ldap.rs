//! The LDAP target: exports to a directory server (OpenLDAP's slapd, or any
//! server speaking LDAPv3) over one connection.
//!
//! Objects are named by DN and known by an operational id that survives
//! renames (`entryUUID`), so an update or delete is sent to the DN the
//! engine last saw and, when the entry is no longer there (renamed or moved
//! by hand), is sent again to wherever a search by id finds it. Each update
//! and delete carries an RFC 4528 assertion that the entry at that DN still
//! has the expected id, so a new entry that took over an old DN is never
//! changed or deleted by mistake.
//!
//! A create asks for the new entry's id with the RFC 4527 post-read control,
//! so a new entry costs one round trip; a server that ignores the control is
//! asked by a search instead. Creates can be pipelined ([`Target::send`]):
//! up to [`WINDOW`] adds are on the wire at once, answered in the order
//! sent, so the export's store writes and the server's work overlap instead
//! of taking turns. Everything else waits for its answer.
//!
//! Exports must survive being run twice (a crash between applying and
//! recording): adding a value already present and removing one already gone
//! count as done, and a rename already made is found by id. A lost
//! connection or a busy server is retried once on a new connection inside
//! the call, then reported as transient; a refusal by the server is reported
//! with the server's own diagnostic text.
//!
//! Entries are parsed here rather than by `ldap3::SearchEntry`, which panics
//! on a malformed answer.

use super::target::{
    Applied, Attrs, Change, ExportError, ExportOp, LdapConfig, RefBy, RemoteObject, Target, secret,
};
use ldap3::adapters::PagedResults;
use ldap3::asn1::{StructureTag, TagClass, parse_tag};
use ldap3::controls::{Assertion, IntoRawControlVec, PostRead};
use ldap3::tokio::runtime::{Builder, Runtime};
use ldap3::tokio::task::JoinHandle;
use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Mod, Scope, SearchResult,
    ldap_escape,
};
use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use tracing::{debug, warn};

/// Creates in flight at once: enough to keep the server busy while the
/// export records earlier answers. 8, 16 and 64 measured the same as 32
/// within the noise of a shared two-core machine (`benches/export.sh`).
pub const WINDOW: usize = 32;
/// Entries per page of a confirming import.
const PAGE_SIZE: i32 = 500;
const POST_READ_OID: &str = "1.3.6.1.1.13.2";

const RC_NO_SUCH_ATTRIBUTE: u32 = 16;
const RC_VALUE_EXISTS: u32 = 20;
const RC_NO_SUCH_OBJECT: u32 = 32;
const RC_ALREADY_EXISTS: u32 = 68;
const RC_ASSERTION_FAILED: u32 = 122;

pub struct LdapTarget {
    cfg: LdapConfig,
    conn: Option<Conn>,
    /// Cleared when the server answers an add without the post-read
    /// control, so later creates stop asking for it and search instead.
    post_read: bool,
    /// Creates sent and not yet answered, oldest first.
    in_flight: VecDeque<InFlight>,
    /// Bumped each time the connection is given up: an add sent on an
    /// earlier one will never be answered.
    generation: u64,
}

/// An add on the wire.
struct InFlight {
    dn: String,
    attrs: Attrs,
    answer: JoinHandle<Result<LdapResult, LdapError>>,
    generation: u64,
}

impl LdapTarget {
    pub fn new(cfg: LdapConfig) -> LdapTarget {
        LdapTarget {
            cfg,
            conn: None,
            post_read: true,
            in_flight: VecDeque::new(),
            generation: 0,
        }
    }

    /// Gives up the connection. A connection that failed once is not
    /// trusted again: a timed-out answer may still arrive on it.
    fn drop_conn(&mut self) {
        self.conn = None;
        self.generation += 1;
    }

    fn run<T>(
        &mut self,
        op: impl FnMut(&mut Session<'_>) -> Result<T, ExportError>,
    ) -> Result<T, ExportError> {
        self.run_retrying_if(|| true, op)
    }

    /// Runs `op` on the connection (opening one if there is none); after a
    /// transient failure, when `may_retry` agrees, once more on a new one.
    fn run_retrying_if<T>(
        &mut self,
        may_retry: impl Fn() -> bool,
        mut op: impl FnMut(&mut Session<'_>) -> Result<T, ExportError>,
    ) -> Result<T, ExportError> {
        let mut retried = false;
        loop {
            let conn = match &mut self.conn {
                Some(c) => c,
                None => self.conn.insert(open(&self.cfg)?),
            };
            let mut session = Session {
                conn,
                cfg: &self.cfg,
                post_read: &mut self.post_read,
            };
            match op(&mut session) {
                Err(e) if e.is_transient() => {
                    self.drop_conn();
                    if retried || !may_retry() {
                        return Err(e);
                    }
                    warn!(url = %self.cfg.url, error = %e, "LDAP operation failed; reconnecting to retry it once.");
                    retried = true;
                }
                other => return other,
            }
        }
    }

    /// The answer to a pipelined add, with what `create` does after an
    /// add: a missing parent OU made, the id read. A transient failure
    /// counts as the first attempt, and the create is made once more on a
    /// new connection, as `apply` would.
    fn answer(&mut self, sent: InFlight) -> Result<Applied, ExportError> {
        let InFlight {
            dn,
            attrs,
            answer,
            generation,
        } = sent;
        let conn = match &mut self.conn {
            Some(c) if generation == self.generation => c,
            // The connection it went on is gone, and its answer with it.
            _ => return self.run(|s| s.create(&dn, &attrs)),
        };
        let first = match conn.rt.block_on(answer) {
            Ok(Ok(res)) => Session {
                conn,
                cfg: &self.cfg,
                post_read: &mut self.post_read,
            }
            .created(&dn, &attrs, res),
            Ok(Err(e)) => Err(lost(&self.cfg, &format!("add {dn}"), e)),
            Err(e) => Err(ExportError::Transient(format!(
                "{}: add {dn}: {e}",
                self.cfg.url
            ))),
        };
        match first {
            Err(e) if e.is_transient() => {
                self.drop_conn();
                warn!(url = %self.cfg.url, error = %e, "LDAP add failed; reconnecting to retry it once.");
                self.run_retrying_if(|| false, |s| s.create(&dn, &attrs))
            }
            other => other,
        }
    }
}

impl Target for LdapTarget {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    fn reference_by(&self) -> RefBy {
        RefBy::Name
    }

    fn connect(&mut self) -> Result<(), ExportError> {
        self.drop_conn();
        self.conn = Some(open(&self.cfg)?);
        Ok(())
    }

    fn find(&mut self, attr: &str, value: &str) -> Result<Option<RemoteObject>, ExportError> {
        self.run(|s| s.find(attr, value))
    }

    fn apply(&mut self, op: &ExportOp) -> Result<Applied, ExportError> {
        self.run(|s| match op {
            ExportOp::Create { name, attrs } => s.create(name, attrs),
            ExportOp::Update {
                id,
                name,
                rename,
                changes,
            } => s.update(id, name, rename.as_deref(), changes),
            ExportOp::Delete { id, name } => s.delete(id, name),
        })
    }

    fn window(&self) -> usize {
        WINDOW
    }

    fn send(&mut self, op: &ExportOp) -> Option<Result<Applied, ExportError>> {
        // Updates and deletes may need a search and a second request
        // depending on the first answer; they are few, so they wait.
        let ExportOp::Create { name, attrs } = op else {
            return Some(self.apply(op));
        };
        let conn = match &mut self.conn {
            Some(c) => c,
            None => match open(&self.cfg) {
                Ok(c) => self.conn.insert(c),
                Err(e) => return Some(Err(e)),
            },
        };
        let mut ldap = conn.ldap.clone();
        add_options(&mut ldap, &self.cfg, self.post_read);
        let entry = add_attrs(&self.cfg.object_classes, attrs);
        let dn = name.clone();
        let answer = conn.rt.spawn(async move { ldap.add(&dn, entry).await });
        // A spawned task runs only while the runtime is driven, and waiting
        // for an answer that is already in does not drive it: one turn now
        // puts the add on the wire, so the server works on it while the
        // caller records earlier answers.
        conn.rt.block_on(ldap3::tokio::task::yield_now());
        self.in_flight.push_back(InFlight {
            dn: name.clone(),
            attrs: attrs.clone(),
            answer,
            generation: self.generation,
        });
        None
    }

    fn receive(&mut self) -> Option<Result<Applied, ExportError>> {
        let sent = self.in_flight.pop_front()?;
        Some(self.answer(sent))
    }

    fn abandon(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        self.in_flight.clear();
        // Their answers would still arrive on it, unread.
        self.drop_conn();
    }

    fn read_all(&mut self, each: &mut dyn FnMut(RemoteObject)) -> Result<(), ExportError> {
        // Once objects have been handed on, a second attempt would hand them
        // on twice; only a read that failed before the first one is retried.
        let delivered = Cell::new(0u64);
        self.run_retrying_if(
            || delivered.get() == 0,
            |s| {
                s.read_all(&mut |o| {
                    delivered.set(delivered.get() + 1);
                    each(o)
                })
            },
        )
    }
}

fn timeout(cfg: &LdapConfig) -> Duration {
    // Zero would make every operation time out at once.
    Duration::from_secs(cfg.timeout_secs.max(1))
}

/// One connection: ldap3's asynchronous client driven by a runtime of its
/// own on the calling thread. ldap3's synchronous `LdapConn` is the same
/// thing, but it keeps its runtime to itself, so it cannot have several
/// requests in flight.
struct Conn {
    rt: Runtime,
    ldap: Ldap,
}

impl Conn {
    fn open(settings: LdapConnSettings, url: &str) -> Result<Conn, LdapError> {
        let rt = Builder::new_current_thread().enable_all().build()?;
        let ldap = rt.block_on(async {
            let (conn, ldap) = LdapConnAsync::with_settings(settings, url).await?;
            ldap3::drive!(conn);
            Ok::<_, LdapError>(ldap)
        })?;
        Ok(Conn { rt, ldap })
    }

    fn with_timeout(&mut self, d: Duration) -> &mut Self {
        self.ldap.with_timeout(d);
        self
    }

    fn with_controls<V: IntoRawControlVec>(&mut self, controls: V) -> &mut Self {
        self.ldap.with_controls(controls);
        self
    }

    fn simple_bind(&mut self, dn: &str, password: &str) -> Result<LdapResult, LdapError> {
        self.rt.block_on(self.ldap.simple_bind(dn, password))
    }

    fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<impl AsRef<str> + Send + Sync>,
    ) -> Result<SearchResult, LdapError> {
        self.rt
            .block_on(self.ldap.search(base, scope, filter, attrs))
    }

    fn add(
        &mut self,
        dn: &str,
        attrs: Vec<(String, HashSet<String>)>,
    ) -> Result<LdapResult, LdapError> {
        self.rt.block_on(self.ldap.add(dn, attrs))
    }

    fn modify(&mut self, dn: &str, mods: Vec<Mod<String>>) -> Result<LdapResult, LdapError> {
        self.rt.block_on(self.ldap.modify(dn, mods))
    }

    fn modifydn(
        &mut self,
        dn: &str,
        rdn: &str,
        delete_old: bool,
        superior: Option<&str>,
    ) -> Result<LdapResult, LdapError> {
        self.rt
            .block_on(self.ldap.modifydn(dn, rdn, delete_old, superior))
    }

    fn delete(&mut self, dn: &str) -> Result<LdapResult, LdapError> {
        self.rt.block_on(self.ldap.delete(dn))
    }
}

/// Sets the next request's timeout, and for an add the post-read control
/// that returns the new entry's id, while the server answers it.
fn add_options(ldap: &mut Ldap, cfg: &LdapConfig, post_read: bool) {
    ldap.with_timeout(timeout(cfg));
    if post_read {
        ldap.with_controls(PostRead::new(vec![cfg.id_attr.as_str()]));
    }
}

/// Connects and binds. Every failure is transient: it concerns the server
/// or the credentials, never an object.
fn open(cfg: &LdapConfig) -> Result<Conn, ExportError> {
    let password = secret(&cfg.password_env)?;
    let settings = LdapConnSettings::new().set_conn_timeout(timeout(cfg));
    let mut conn = Conn::open(settings, &cfg.url).map_err(|e| {
        ExportError::Transient(format!(
            "{}: cannot connect to bind as {}: {e}",
            cfg.url, cfg.bind_dn
        ))
    })?;
    let res = conn
        .with_timeout(timeout(cfg))
        .simple_bind(&cfg.bind_dn, &password)
        .map_err(|e| {
            ExportError::Transient(format!("{}: bind as {} failed: {e}", cfg.url, cfg.bind_dn))
        })?;
    if res.rc != 0 {
        return Err(ExportError::Transient(format!(
            "{}: bind as {} refused: {}",
            cfg.url,
            cfg.bind_dn,
            describe(&res)
        )));
    }
    debug!(url = %cfg.url, bind_dn = %cfg.bind_dn, "Connected to the LDAP server.");
    Ok(conn)
}

/// One attempt at an operation on an open connection.
struct Session<'a> {
    conn: &'a mut Conn,
    cfg: &'a LdapConfig,
    post_read: &'a mut bool,
}

impl Session<'_> {
    fn find(&mut self, attr: &str, value: &str) -> Result<Option<RemoteObject>, ExportError> {
        let cfg = self.cfg;
        let filter = match_filter(&cfg.filter, attr, value);
        let what = format!("search {} for {filter}", cfg.base);
        let mut hits = self.search(&cfg.base, Scope::Subtree, &filter, &what)?;
        if hits.len() > 1 {
            return Err(ExportError::Rejected(format!(
                "{what}: it matches {} entries, so there is no single one to join to",
                hits.len()
            )));
        }
        let Some(entry) = hits.pop() else {
            return Ok(None);
        };
        let dn = entry.dn.clone();
        entry
            .into_remote(&cfg.id_attr, &wanted_names(cfg), &mut 0)
            .map(Some)
            .ok_or_else(|| ExportError::Rejected(format!("{dn} has no {}", cfg.id_attr)))
    }

    /// A search that must succeed, asking for the id and the configured
    /// attributes.
    fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        what: &str,
    ) -> Result<Vec<Entry>, ExportError> {
        let attrs = read_attrs(self.cfg);
        let res = self
            .conn
            .with_timeout(timeout(self.cfg))
            .search(base, scope, filter, attrs)
            .map_err(|e| lost(self.cfg, what, e))?;
        if res.1.rc != 0 {
            return Err(refused(self.cfg, what, &res.1));
        }
        Ok(res
            .0
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .filter_map(|e| parse_entry(e.0))
            .collect())
    }

    /// Where the entry with this id is now, if anywhere under the base.
    fn locate(&mut self, id: &str) -> Result<Option<String>, ExportError> {
        let filter = format!("({}={})", self.cfg.id_attr, ldap_escape(id));
        let what = format!("search {} for {filter}", self.cfg.base);
        let res = self
            .conn
            .with_timeout(timeout(self.cfg))
            .search(&self.cfg.base, Scope::Subtree, &filter, vec!["1.1"])
            .map_err(|e| lost(self.cfg, &what, e))?;
        if res.1.rc != 0 {
            return Err(refused(self.cfg, &what, &res.1));
        }
        Ok(res
            .0
            .into_iter()
            .find_map(|e| parse_entry(e.0))
            .map(|e| e.dn))
    }

    fn create(&mut self, dn: &str, attrs: &Attrs) -> Result<Applied, ExportError> {
        let res = self.add(dn, attrs)?;
        self.created(dn, attrs, res)
    }

    fn add(&mut self, dn: &str, attrs: &Attrs) -> Result<LdapResult, ExportError> {
        add_options(&mut self.conn.ldap, self.cfg, *self.post_read);
        self.conn
            .add(dn, add_attrs(&self.cfg.object_classes, attrs))
            .map_err(|e| lost(self.cfg, &format!("add {dn}"), e))
    }

    /// What the server's answer `res` to an add means: a missing parent OU
    /// is made and the add sent again; the new id comes from the post-read
    /// control, or from a search when the server ignores the control.
    fn created(
        &mut self,
        dn: &str,
        attrs: &Attrs,
        mut res: LdapResult,
    ) -> Result<Applied, ExportError> {
        if res.rc == RC_NO_SUCH_OBJECT && self.make_parent(dn)? {
            res = self.add(dn, attrs)?;
        }
        match res.rc {
            0 => {}
            RC_ALREADY_EXISTS => return Err(ExportError::Exists(dn.to_string())),
            _ => return Err(refused(self.cfg, &format!("add {dn}"), &res)),
        }
        let id = match post_read_id(&res, &self.cfg.id_attr) {
            Some(id) => id,
            None => {
                if *self.post_read {
                    debug!(url = %self.cfg.url, "The server does not answer the post-read control; new ids are read by a search.");
                    *self.post_read = false;
                }
                self.id_of(dn)?
            }
        };
        Ok(Applied {
            id,
            name: dn.to_string(),
        })
    }

    /// Creates the organizational unit `dn` needs as its parent, and the
    /// ones above it, below the base: a department's OU the first time
    /// someone joins it. True when something was created. Other missing
    /// parents (not `ou=`, or outside the base) are the admin's to make.
    fn make_parent(&mut self, dn: &str) -> Result<bool, ExportError> {
        let Some((_, parent)) = split_dn(dn) else {
            return Ok(false);
        };
        let (p, base) = (normal_dn(parent), normal_dn(&self.cfg.base));
        let below = p.len() > base.len()
            && p[p.len() - base.len()..]
                .iter()
                .zip(&base)
                .all(|(x, y)| x.eq_ignore_ascii_case(y));
        let Some((rdn, _)) = split_dn(parent) else {
            return Ok(false);
        };
        let Some((attr, value)) = rdn.split_once('=') else {
            return Ok(false);
        };
        if !below || !attr.trim().eq_ignore_ascii_case("ou") {
            return Ok(false);
        }
        let what = format!("add {parent}");
        let ou: HashSet<String> = [dn_unescape(value.trim())].into_iter().collect();
        let classes: HashSet<String> = ["top", "organizationalUnit"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        let entry = vec![("objectClass".to_string(), classes), ("ou".to_string(), ou)];
        for _ in 0..2 {
            let res = self
                .conn
                .with_timeout(timeout(self.cfg))
                .add(parent, entry.clone())
                .map_err(|e| lost(self.cfg, &what, e))?;
            match res.rc {
                0 | RC_ALREADY_EXISTS => return Ok(true),
                RC_NO_SUCH_OBJECT if self.make_parent(parent)? => continue,
                _ => return Err(refused(self.cfg, &what, &res)),
            }
        }
        Ok(false)
    }

    fn id_of(&mut self, dn: &str) -> Result<String, ExportError> {
        let what = format!("read {} of {dn}", self.cfg.id_attr);
        let entries = self.search(dn, Scope::Base, "(objectClass=*)", &what)?;
        entries
            .iter()
            .find_map(|e| e.first(&self.cfg.id_attr))
            .ok_or_else(|| {
                ExportError::Rejected(format!("{what}: the new entry has no {}", self.cfg.id_attr))
            })
    }

    fn update(
        &mut self,
        id: &str,
        dn: &str,
        rename: Option<&str>,
        changes: &[Change],
    ) -> Result<Applied, ExportError> {
        let mut dn = dn.to_string();
        if let Some(to) = rename {
            dn = self.rename(id, &dn, to)?;
        }
        let mods = to_mods(changes);
        if !mods.is_empty() {
            dn = self.modify(id, &dn, &mods)?;
        }
        Ok(Applied {
            id: id.to_string(),
            name: dn,
        })
    }

    /// Renames (and moves) the entry, wherever it now is; returns its new DN.
    fn rename(&mut self, id: &str, from: &str, to: &str) -> Result<String, ExportError> {
        if same_dn(from, to) {
            return Ok(from.to_string());
        }
        let Some((rdn, parent)) = split_dn(to) else {
            return Err(ExportError::Rejected(format!(
                "rename {from} to {to}: the new name is not a DN"
            )));
        };
        let what = format!("rename {from} to {to}");
        let mut at = from.to_string();
        for attempt in 0..2 {
            let superior = split_dn(&at)
                .filter(|(_, p)| !same_parent(p, parent))
                .map(|_| parent);
            self.assert_id(id)?;
            let res = self
                .conn
                .modifydn(&at, rdn, true, superior)
                .map_err(|e| lost(self.cfg, &what, e))?;
            match res.rc {
                0 => return Ok(to.to_string()),
                // The new parent may be what is missing (a new department).
                RC_NO_SUCH_OBJECT
                    if attempt == 0 && superior.is_some() && self.make_parent(to)? => {}
                RC_NO_SUCH_OBJECT | RC_ASSERTION_FAILED if attempt == 0 => {
                    match self.locate(id)? {
                        None => return Err(ExportError::NotFound(from.to_string())),
                        // Renamed before: by an export that did not live to
                        // record it, or by hand to the same name.
                        Some(now) if same_dn(&now, to) => return Ok(now),
                        Some(now) => at = now,
                    }
                }
                RC_NO_SUCH_OBJECT | RC_ASSERTION_FAILED => {
                    return Err(ExportError::NotFound(from.to_string()));
                }
                RC_ALREADY_EXISTS => {
                    return Err(ExportError::Rejected(format!(
                        "{what}: another entry already has that name"
                    )));
                }
                _ => return Err(refused(self.cfg, &what, &res)),
            }
        }
        Err(ExportError::NotFound(from.to_string()))
    }

    /// Applies `mods` to the entry, wherever it now is; returns its DN.
    fn modify(&mut self, id: &str, dn: &str, mods: &[Mod<String>]) -> Result<String, ExportError> {
        let what = format!("modify {dn}");
        if self.modify_at(id, dn, mods, &what)? == 0 {
            return Ok(dn.to_string());
        }
        let Some(now) = self.locate(id)? else {
            return Err(ExportError::NotFound(dn.to_string()));
        };
        match self.modify_at(id, &now, mods, &what)? {
            0 => Ok(now),
            _ => Err(ExportError::NotFound(dn.to_string())),
        }
    }

    /// Ok(0) when applied, Ok(rc) when the entry at `dn` is not the one
    /// with `id` (gone, or another entry), an error otherwise.
    fn modify_at(
        &mut self,
        id: &str,
        dn: &str,
        mods: &[Mod<String>],
        what: &str,
    ) -> Result<u32, ExportError> {
        let res = self.modify_once(id, dn, mods.to_vec(), what)?;
        if res.rc != RC_VALUE_EXISTS && res.rc != RC_NO_SUCH_ATTRIBUTE {
            return Ok(res.rc);
        }
        // One modify is all or nothing, so a value added or removed before
        // (an export run twice) fails the whole request. Apply value by
        // value to learn which ones are already done.
        for m in mods.iter().flat_map(one_value_each) {
            let done_before = match &m {
                Mod::Add(..) => RC_VALUE_EXISTS,
                Mod::Delete(..) | Mod::Replace(..) => RC_NO_SUCH_ATTRIBUTE,
                Mod::Increment(..) => 0,
            };
            let res = self.modify_once(id, dn, vec![m], what)?;
            match res.rc {
                0 => {}
                rc if rc == done_before => {}
                RC_VALUE_EXISTS | RC_NO_SUCH_ATTRIBUTE => {
                    return Err(refused(self.cfg, what, &res));
                }
                rc => return Ok(rc),
            }
        }
        Ok(0)
    }

    /// One modify request; its result when the code is one the callers
    /// handle, an error otherwise.
    fn modify_once(
        &mut self,
        id: &str,
        dn: &str,
        mods: Vec<Mod<String>>,
        what: &str,
    ) -> Result<LdapResult, ExportError> {
        self.assert_id(id)?;
        let res = self
            .conn
            .modify(dn, mods)
            .map_err(|e| lost(self.cfg, what, e))?;
        match res.rc {
            0 | RC_NO_SUCH_OBJECT | RC_ASSERTION_FAILED | RC_VALUE_EXISTS
            | RC_NO_SUCH_ATTRIBUTE => Ok(res),
            _ => Err(refused(self.cfg, what, &res)),
        }
    }

    fn delete(&mut self, id: &str, dn: &str) -> Result<Applied, ExportError> {
        let what = format!("delete {dn}");
        let mut at = dn.to_string();
        for attempt in 0..2 {
            self.assert_id(id)?;
            let res = self
                .conn
                .delete(&at)
                .map_err(|e| lost(self.cfg, &what, e))?;
            match res.rc {
                0 => {
                    return Ok(Applied {
                        id: id.to_string(),
                        name: at,
                    });
                }
                RC_NO_SUCH_OBJECT | RC_ASSERTION_FAILED if attempt == 0 => {
                    match self.locate(id)? {
                        Some(now) => at = now,
                        None => break,
                    }
                }
                RC_NO_SUCH_OBJECT | RC_ASSERTION_FAILED => break,
                _ => return Err(refused(self.cfg, &what, &res)),
            }
        }
        Err(ExportError::NotFound(dn.to_string()))
    }

    /// Makes the next request apply only to the entry with this id, and
    /// sets its timeout.
    fn assert_id(&mut self, id: &str) -> Result<(), ExportError> {
        let filter = format!("({}={})", self.cfg.id_attr, ldap_escape(id));
        // `Assertion::new` panics on a filter it cannot parse.
        if ldap3::parse_filter(&filter).is_err() {
            return Err(ExportError::Rejected(format!(
                "{filter} is not a valid LDAP filter: check id_attr"
            )));
        }
        self.conn
            .with_timeout(timeout(self.cfg))
            .with_controls(Assertion::new(filter));
        Ok(())
    }

    fn read_all(&mut self, each: &mut dyn FnMut(RemoteObject)) -> Result<(), ExportError> {
        let filter = base_filter(&self.cfg.filter);
        let what = format!("search {} for {filter}", self.cfg.base);
        let names = wanted_names(self.cfg);
        let (mut read, mut no_id, mut binary) = (0u64, 0u64, 0u64);
        let mut first_without_id = None;
        let cfg = self.cfg;
        let Conn { rt, ldap } = &mut *self.conn;
        ldap.with_timeout(timeout(cfg));
        let mut stream = rt
            .block_on(ldap.streaming_search_with(
                PagedResults::new(PAGE_SIZE),
                &cfg.base,
                Scope::Subtree,
                &filter,
                read_attrs(cfg),
            ))
            .map_err(|e| lost(cfg, &what, e))?;
        loop {
            let entry = match rt.block_on(stream.next()) {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => return Err(lost(cfg, &what, e)),
            };
            if entry.is_ref() || entry.is_intermediate() {
                continue;
            }
            let Some(entry) = parse_entry(entry.0) else {
                return Err(ExportError::Transient(format!(
                    "{}: {what}: the server sent an entry that cannot be parsed",
                    cfg.url
                )));
            };
            let dn = entry.dn.clone();
            match entry.into_remote(&cfg.id_attr, &names, &mut binary) {
                Some(o) => {
                    read += 1;
                    each(o);
                }
                None => {
                    no_id += 1;
                    first_without_id.get_or_insert(dn);
                }
            }
        }
        let res = rt.block_on(stream.finish());
        if res.rc != 0 {
            return Err(refused(cfg, &what, &res));
        }
        if let Some(first) = first_without_id {
            warn!(url = %cfg.url, id_attr = %cfg.id_attr, skipped = no_id, first = %first, "Entries without an id were skipped.");
        }
        if binary > 0 {
            warn!(url = %cfg.url, values = binary, "Values that are not UTF-8 text were skipped.");
        }
        debug!(url = %cfg.url, entries = read, "Read the LDAP target.");
        Ok(())
    }
}

/// The id attribute and the configured ones, as sent in a search.
fn read_attrs(cfg: &LdapConfig) -> Vec<String> {
    let mut attrs = Vec::with_capacity(cfg.attributes.len() + 1);
    attrs.push(cfg.id_attr.clone());
    attrs.extend(cfg.attributes.iter().cloned());
    attrs
}

/// Configured attribute names by their lowercase form: servers answer in
/// their schema's spelling (`givenName` when asked for `givenname`).
fn wanted_names(cfg: &LdapConfig) -> HashMap<String, String> {
    cfg.attributes
        .iter()
        .map(|a| (a.to_ascii_lowercase(), a.clone()))
        .collect()
}

/// The agent's filter in parentheses, as RFC 4515 wants it.
fn base_filter(filter: &str) -> String {
    let f = filter.trim();
    if f.is_empty() {
        "(objectClass=*)".to_string()
    } else if f.starts_with('(') {
        f.to_string()
    } else {
        format!("({f})")
    }
}

/// The agent's entries whose `attr` equals `value`, the value escaped
/// (RFC 4515) so that `*`, parentheses and backslashes match themselves.
fn match_filter(filter: &str, attr: &str, value: &str) -> String {
    format!("(&{}({attr}={}))", base_filter(filter), ldap_escape(value))
}

/// An add request's attributes: the configured object classes first (and
/// any the flows give, once each), then every attribute with values.
fn add_attrs(classes: &[String], attrs: &Attrs) -> Vec<(String, HashSet<String>)> {
    let mut all: Vec<&String> = Vec::new();
    let extra = attrs
        .iter()
        .filter(|(a, _)| a.eq_ignore_ascii_case("objectClass"))
        .flat_map(|(_, v)| v);
    for c in classes.iter().chain(extra) {
        if !all.iter().any(|k| k.eq_ignore_ascii_case(c)) {
            all.push(c);
        }
    }
    let mut out = Vec::with_capacity(attrs.len() + 1);
    if !all.is_empty() {
        out.push((
            "objectClass".to_string(),
            all.into_iter().cloned().collect(),
        ));
    }
    for (a, vals) in attrs {
        if !vals.is_empty() && !a.eq_ignore_ascii_case("objectClass") {
            out.push((a.clone(), vals.iter().cloned().collect()));
        }
    }
    out
}

/// The modifications of an update. An `Add` or `Remove` without values is
/// dropped: an LDAP delete without values would remove every value.
fn to_mods(changes: &[Change]) -> Vec<Mod<String>> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Replace(a, v) => Some(Mod::Replace(a.clone(), v.iter().cloned().collect())),
            Change::Add(a, v) if !v.is_empty() => {
                Some(Mod::Add(a.clone(), v.iter().cloned().collect()))
            }
            Change::Remove(a, v) if !v.is_empty() => {
                Some(Mod::Delete(a.clone(), v.iter().cloned().collect()))
            }
            Change::Add(..) | Change::Remove(..) => None,
        })
        .collect()
}

/// A modification split so that each added or removed value is its own.
fn one_value_each(m: &Mod<String>) -> Vec<Mod<String>> {
    let single = |a: &String, v: &String| (a.clone(), HashSet::from([v.clone()]));
    match m {
        Mod::Add(a, vals) => vals
            .iter()
            .map(|v| {
                let (a, s) = single(a, v);
                Mod::Add(a, s)
            })
            .collect(),
        Mod::Delete(a, vals) if !vals.is_empty() => vals
            .iter()
            .map(|v| {
                let (a, s) = single(a, v);
                Mod::Delete(a, s)
            })
            .collect(),
        other => vec![other.clone()],
    }
}

/// An RDN value as written in a DN (`Director\, Finance`) as the
/// attribute holds it (`Director, Finance`); hex escapes (`\2C`) too.
fn dn_unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(x) => {
                    out.push(x);
                    i += 3;
                }
                None => {
                    out.push(b[i + 1]);
                    i += 2;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a DN into its first RDN and its parent, at the first comma that
/// is not escaped or quoted. None when there is no RDN.
fn split_dn(dn: &str) -> Option<(&str, &str)> {
    let (rdn, parent) = match first_separator(dn, b",") {
        Some(i) => (&dn[..i], &dn[i + 1..]),
        None => (dn, ""),
    };
    let rdn = rdn.trim();
    if rdn.is_empty() || !rdn.contains('=') {
        return None;
    }
    Some((rdn, parent.trim()))
}

/// The byte index of the first of `seps` outside escapes and quotes.
fn first_separator(s: &str, seps: &[u8]) -> Option<usize> {
    let mut escaped = false;
    let mut quoted = false;
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if !quoted && seps.contains(&b) {
            return Some(i);
        }
    }
    None
}

/// The DN's components with spaces around separators dropped and attribute
/// types lowercased; values keep their case, so a rename that changes only
/// a value's case is still made.
fn normal_dn(dn: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = dn.trim();
    while !rest.is_empty() {
        let end = first_separator(rest, b",+").unwrap_or(rest.len());
        let part = rest[..end].trim();
        out.push(match part.split_once('=') {
            Some((t, v)) => format!("{}={}", t.trim().to_ascii_lowercase(), v.trim()),
            None => part.to_string(),
        });
        rest = rest.get(end + 1..).unwrap_or("").trim_start();
    }
    out
}

fn same_dn(a: &str, b: &str) -> bool {
    normal_dn(a) == normal_dn(b)
}

/// Parents compare without case: naming values of containers (`ou`, `dc`)
/// match case-insensitively, and a move is only sent when the parent
/// really differs.
fn same_parent(a: &str, b: &str) -> bool {
    let (a, b) = (normal_dn(a), normal_dn(b));
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// A search result entry, parsed without trusting the server's encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    dn: String,
    attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    fn first(&self, attr: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(attr))
            .and_then(|(_, v)| v.first())
            .and_then(|v| String::from_utf8(v.clone()).ok())
    }

    /// None when the entry has no id. Values that are not text are counted
    /// in `binary` and left out.
    fn into_remote(
        self,
        id_attr: &str,
        names: &HashMap<String, String>,
        binary: &mut u64,
    ) -> Option<RemoteObject> {
        let id = self.first(id_attr)?;
        let mut attrs = Attrs::new();
        for (a, vals) in self.attrs {
            let Some(name) = names.get(&a.to_ascii_lowercase()) else {
                continue;
            };
            let mut text = Vec::with_capacity(vals.len());
            for v in vals {
                match String::from_utf8(v) {
                    Ok(s) => text.push(s),
                    Err(_) => *binary += 1,
                }
            }
            if !text.is_empty() {
                attrs.entry(name.clone()).or_default().extend(text);
            }
        }
        Some(RemoteObject {
            id,
            name: self.dn,
            attrs,
        })
    }
}

/// Parses a SearchResultEntry (`[APPLICATION 4] SEQUENCE { objectName,
/// attributes }`); None for anything else.
fn parse_entry(tag: StructureTag) -> Option<Entry> {
    if tag.class != TagClass::Application || tag.id != 4 {
        return None;
    }
    let mut parts = tag.expect_constructed()?.into_iter();
    let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
    let mut attrs = Vec::new();
    for partial in parts.next()?.expect_constructed()? {
        let mut partial = partial.expect_constructed()?.into_iter();
        let name = String::from_utf8(partial.next()?.expect_primitive()?).ok()?;
        let vals = partial
            .next()?
            .expect_constructed()?
            .into_iter()
            .map(|v| v.expect_primitive())
            .collect::<Option<Vec<_>>>()?;
        attrs.push((name, vals));
    }
    Some(Entry { dn, attrs })
}

/// The id in an add's post-read response control, if the server sent one.
fn post_read_id(res: &LdapResult, id_attr: &str) -> Option<String> {
    res.ctrls
        .iter()
        .filter(|c| c.1.ctype == POST_READ_OID)
        .find_map(|c| {
            let (_, tag) = parse_tag(c.1.val.as_deref()?).ok()?;
            parse_entry(tag)?.first(id_attr)
        })
}

/// Result codes that say the server cannot serve now, not that it refuses
/// the request: time limit, busy, unavailable, other.
fn is_transient_rc(rc: u32) -> bool {
    matches!(rc, 3 | 51 | 52 | 80)
}

/// Errors raised by the client library about the request itself rather
/// than the connection.
fn is_request_error(e: &LdapError) -> bool {
    matches!(
        e,
        LdapError::FilterParsing
            | LdapError::AddNoValues
            | LdapError::DecodingUTF8
            | LdapError::AdapterInit(_)
            | LdapError::UrlParsing { .. }
            | LdapError::UnknownScheme(_)
            | LdapError::InvalidScopeString(_)
    )
}

/// A failure to get an answer: transient, unless the request was unusable.
fn lost(cfg: &LdapConfig, what: &str, e: LdapError) -> ExportError {
    match e {
        LdapError::LdapResult { result } => refused(cfg, what, &result),
        e if is_request_error(&e) => ExportError::Rejected(format!("{what}: {e}")),
        e => ExportError::Transient(format!("{}: {what}: {e}", cfg.url)),
    }
}

/// A non-zero result code for which the operation has no special meaning.
fn refused(cfg: &LdapConfig, what: &str, res: &LdapResult) -> ExportError {
    if is_transient_rc(res.rc) {
        ExportError::Transient(format!("{}: {what}: {}", cfg.url, describe(res)))
    } else {
        ExportError::Rejected(format!("{what}: {}", describe(res)))
    }
}

/// `objectClassViolation (65): object class 'inetOrgPerson' requires attribute 'sn'`.
fn describe(res: &LdapResult) -> String {
    let name = rc_name(res.rc);
    if res.text.is_empty() {
        format!("{name} ({})", res.rc)
    } else {
        format!("{name} ({}): {}", res.rc, res.text)
    }
}

fn rc_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        71 => "affectsMultipleDSAs",
        80 => "other",
        122 => "assertionFailed",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::controls::{Control, RawControl};

    fn cfg() -> LdapConfig {
        LdapConfig {
            url: "ldap://127.0.0.1:1".into(),
            bind_dn: "cn=admin,dc=example,dc=com".into(),
            password_env: "UNUSED".into(),
            base: "dc=example,dc=com".into(),
            filter: "(objectClass=inetOrgPerson)".into(),
            object_classes: vec!["inetOrgPerson".into()],
            id_attr: "entryUUID".into(),
            attributes: vec!["uid".into(), "givenname".into(), "mail".into()],
            timeout_secs: 5,
        }
    }

    fn result(rc: u32, text: &str) -> LdapResult {
        LdapResult {
            rc,
            matched: String::new(),
            text: text.into(),
            refs: vec![],
            ctrls: vec![],
        }
    }

    /// One BER element: tag, definite length, content.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n => {
                let len = (n as u32).to_be_bytes();
                let skip = len.iter().take_while(|b| **b == 0).count();
                out.push(0x80 | (4 - skip) as u8);
                out.extend(&len[skip..]);
            }
        }
        out.extend(content);
        out
    }

    /// BER of a SearchResultEntry, as a server would send it.
    fn entry_ber(dn: &str, attrs: &[(&str, &[&[u8]])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (a, vals) in attrs {
            let vals: Vec<u8> = vals.iter().flat_map(|v| tlv(0x04, v)).collect();
            let mut partial = tlv(0x04, a.as_bytes());
            partial.extend(tlv(0x31, &vals));
            list.extend(tlv(0x30, &partial));
        }
        let mut body = tlv(0x04, dn.as_bytes());
        body.extend(tlv(0x30, &list));
        tlv(0x64, &body)
    }

    #[test]
    fn filter_values_are_escaped() {
        assert_eq!(
            match_filter("(objectClass=inetOrgPerson)", "uid", "j*doe (x)\\"),
            "(&(objectClass=inetOrgPerson)(uid=j\\2adoe \\28x\\29\\5c))"
        );
        assert_eq!(
            match_filter("", "cn", "a\0b"),
            "(&(objectClass=*)(cn=a\\00b))"
        );
        assert_eq!(
            match_filter(" objectClass=person ", "uid", "jdoe"),
            "(&(objectClass=person)(uid=jdoe))"
        );
        assert!(ldap3::parse_filter(match_filter("", "uid", "*)(uid=*")).is_ok());
    }

    #[test]
    fn dn_splits_into_rdn_and_parent() {
        assert_eq!(
            split_dn("uid=jdoe,ou=people,dc=example,dc=com"),
            Some(("uid=jdoe", "ou=people,dc=example,dc=com"))
        );
        assert_eq!(
            split_dn("cn=Doe\\, John, ou=people"),
            Some(("cn=Doe\\, John", "ou=people"))
        );
        assert_eq!(
            split_dn("cn=\"Doe, John\",ou=people"),
            Some(("cn=\"Doe, John\"", "ou=people"))
        );
        assert_eq!(split_dn("cn=a\\\\,ou=x"), Some(("cn=a\\\\", "ou=x")));
        assert_eq!(split_dn("dc=com"), Some(("dc=com", "")));
        assert_eq!(split_dn(""), None);
        assert_eq!(split_dn(",ou=x"), None);
        assert_eq!(split_dn("nonsense"), None);
    }

    #[test]
    fn dns_compare_by_components() {
        assert!(same_dn("uid=a,ou=people,dc=x", "UID=a, ou=people , dc=x"));
        assert!(!same_dn("uid=A,ou=people,dc=x", "uid=a,ou=people,dc=x"));
        assert!(!same_dn("uid=a,ou=people", "uid=a,ou=disabled"));
        assert!(same_dn("cn=a+sn=b,dc=x", "cn=a + sn=b, dc=x"));
        assert!(same_parent("ou=People,dc=Example", "OU=people, dc=example"));
        assert!(!same_parent("ou=people,dc=x", "ou=disabled,dc=x"));
        assert!(!same_parent("dc=x", "ou=a,dc=x"));
    }

    #[test]
    fn changes_become_modifications() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        let changes = vec![
            Change::Replace("mail".into(), vec!["a@x".into()]),
            Change::Replace("title".into(), vec![]),
            Change::Add("member".into(), vec!["uid=a".into(), "uid=b".into()]),
            Change::Remove("member".into(), vec!["uid=c".into()]),
            Change::Add("member".into(), vec![]),
            Change::Remove("member".into(), vec![]),
        ];
        assert_eq!(
            to_mods(&changes),
            vec![
                Mod::Replace("mail".into(), set(&["a@x"])),
                Mod::Replace("title".into(), set(&[])),
                Mod::Add("member".into(), set(&["uid=a", "uid=b"])),
                Mod::Delete("member".into(), set(&["uid=c"])),
            ]
        );
        let split = one_value_each(&Mod::Add("member".into(), set(&["uid=a", "uid=b"])));
        assert_eq!(split.len(), 2);
        assert!(split.contains(&Mod::Add("member".into(), set(&["uid=b"]))));
        let clear = Mod::Replace("title".into(), set(&[]));
        assert_eq!(one_value_each(&clear), vec![clear]);
    }

    #[test]
    fn add_request_carries_object_classes_once() {
        let mut attrs = Attrs::new();
        attrs.insert("cn".into(), vec!["John Doe".into()]);
        attrs.insert(
            "objectclass".into(),
            vec!["INETORGPERSON".into(), "posixAccount".into()],
        );
        attrs.insert("title".into(), vec![]);
        let got = add_attrs(&["inetOrgPerson".into(), "top".into()], &attrs);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "objectClass");
        let classes: HashSet<String> = ["inetOrgPerson", "top", "posixAccount"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got[0].1, classes);
        assert_eq!(got[1].0, "cn");
    }

    #[test]
    fn result_codes_are_classified() {
        let c = cfg();
        for rc in [51, 52, 80, 3] {
            let e = refused(&c, "add uid=a", &result(rc, "try later"));
            assert!(e.is_transient(), "rc {rc}: {e}");
            assert!(e.to_string().contains("ldap://127.0.0.1:1"), "{e}");
        }
        for rc in [17, 18, 19, 21, 50, 53, 64, 65, 67, 69] {
            let e = refused(&c, "add uid=a", &result(rc, "the server's reason"));
            assert!(matches!(e, ExportError::Rejected(_)), "rc {rc}: {e}");
        }
        let e = refused(
            &c,
            "add uid=a",
            &result(65, "object class 'inetOrgPerson' requires attribute 'sn'"),
        );
        assert_eq!(
            e.to_string(),
            "add uid=a: objectClassViolation (65): object class 'inetOrgPerson' requires attribute 'sn'"
        );
    }

    #[test]
    fn client_errors_are_classified() {
        let c = cfg();
        let reset = LdapError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(lost(&c, "delete uid=a", reset).is_transient());
        assert!(matches!(
            lost(&c, "search", LdapError::FilterParsing),
            ExportError::Rejected(_)
        ));
        let wrapped = LdapError::from(result(52, ""));
        assert!(lost(&c, "modify uid=a", wrapped).is_transient());
    }

    #[test]
    fn entries_parse_without_panicking() {
        let ber = entry_ber(
            "uid=jdoe,ou=people,dc=example,dc=com",
            &[
                ("entryUUID", &[b"0b2c6a3e-1111-2222-3333-444455556666"]),
                ("givenName", &[b"John"]),
                ("jpegPhoto", &[b"\xff\xd8\xff"]),
                ("mail", &[b"j@x", b"john@x"]),
            ],
        );
        let (_, tag) = parse_tag(&ber).expect("ber");
        let entry = parse_entry(tag).expect("entry");
        assert_eq!(entry.dn, "uid=jdoe,ou=people,dc=example,dc=com");
        let mut names = wanted_names(&cfg());
        names.insert("jpegphoto".into(), "jpegPhoto".into());
        let mut binary = 0;
        let o = entry
            .into_remote("entryuuid", &names, &mut binary)
            .expect("id");
        assert_eq!(o.id, "0b2c6a3e-1111-2222-3333-444455556666");
        assert_eq!(o.attrs["givenname"], vec!["John"]);
        assert_eq!(o.attrs["mail"], vec!["j@x", "john@x"]);
        assert!(!o.attrs.contains_key("jpegPhoto"));
        assert!(!o.attrs.contains_key("entryUUID"));
        assert_eq!(binary, 1);

        for bad in [
            &ber[..ber.len() / 2],
            &[0x30, 0x00][..],
            &[0x64, 0x03, 0x04, 0x01, 0xff][..],
            &[][..],
        ] {
            if let Ok((_, tag)) = parse_tag(bad) {
                assert_eq!(parse_entry(tag), None);
            }
        }
    }

    #[test]
    fn post_read_control_gives_the_id() {
        let ber = entry_ber("uid=a,dc=x", &[("entryUUID", &[b"1234"])]);
        let mut res = result(0, "");
        assert_eq!(post_read_id(&res, "entryUUID"), None);
        res.ctrls.push(Control(
            None,
            RawControl {
                ctype: POST_READ_OID.into(),
                crit: false,
                val: Some(vec![0x64, 0x80]),
            },
        ));
        assert_eq!(post_read_id(&res, "entryUUID"), None);
        res.ctrls.push(Control(
            None,
            RawControl {
                ctype: POST_READ_OID.into(),
                crit: false,
                val: Some(ber),
            },
        ));
        assert_eq!(post_read_id(&res, "entryuuid").as_deref(), Some("1234"));
    }
}
