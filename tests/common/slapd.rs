//! A private OpenLDAP server per test: its own port, configuration and data
//! folder in a temporary directory, started in the foreground so the child's
//! pid is slapd's own and a test can stop and restart it on the same data.
//!
//! The suffix is `dc=example,dc=com` with `ou=people`, `ou=groups` and
//! `ou=disabled` below it; the root DN `cn=admin,dc=example,dc=com` binds
//! with the password `secret`. Hand changes go through the `ldapadd` and
//! `ldapmodify` tools, as an administrator's would.

use ldap3::{LdapConn, Scope, SearchEntry};
use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SLAPD: &str = "/usr/sbin/slapd";
const SUFFIX: &str = "dc=example,dc=com";
const ADMIN: &str = "cn=admin,dc=example,dc=com";
const PASSWORD: &str = "secret";
const READY_WITHIN: Duration = Duration::from_secs(5);

pub struct Slapd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Slapd {
    /// A running server holding the suffix and its three OUs.
    pub fn start() -> Slapd {
        if !Path::new(SLAPD).exists() {
            panic!("slapd is not installed: run .ci/run, or apt-get install slapd ldap-utils");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("data")).expect("data dir");
        std::fs::write(dir.path().join("slapd.conf"), config(dir.path())).expect("slapd.conf");
        let mut s = Slapd {
            dir,
            port: 0,
            child: None,
        };
        // The free port found is released before slapd binds it, so a
        // parallel test can take it in between: try a few ports.
        let mut last = String::new();
        for _ in 0..5 {
            s.port = free_port();
            match s.launch() {
                Ok(()) => {
                    s.add_base();
                    return s;
                }
                Err(e) => last = e,
            }
        }
        panic!("slapd did not start: {last}");
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn admin_dn(&self) -> &'static str {
        ADMIN
    }

    pub fn password(&self) -> &'static str {
        PASSWORD
    }

    pub fn base(&self) -> &'static str {
        SUFFIX
    }

    /// Stops the server (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) with the pid of a child this harness spawned and
        // has not yet reaped, so the pid cannot name another process.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let until = Instant::now() + READY_WITHIN;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        let until = Instant::now() + READY_WITHIN;
        loop {
            match self.launch() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(e) if Instant::now() >= until => panic!("slapd did not restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Entries below `base` matching `filter`, with the attributes asked
    /// for (`*`, `+` or names), sorted by DN.
    pub fn search(
        &self,
        base: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Vec<(String, BTreeMap<String, Vec<String>>)> {
        let mut conn = self.admin();
        let res = conn
            .search(base, Scope::Subtree, filter, attrs.to_vec())
            .expect("search")
            .success()
            .unwrap_or_else(|e| panic!("search {base} {filter}: {e}"));
        let mut out: Vec<_> = res
            .0
            .into_iter()
            .map(|e| {
                let e = SearchEntry::construct(e);
                let mut attrs: BTreeMap<String, Vec<String>> = e.attrs.into_iter().collect();
                for v in attrs.values_mut() {
                    v.sort();
                }
                (e.dn, attrs)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// How many entries of the whole suffix match `filter`.
    pub fn count(&self, filter: &str) -> usize {
        self.search(SUFFIX, filter, &["1.1"]).len()
    }

    /// Applies LDIF changes (`changetype: ...`) with the `ldapmodify` tool.
    pub fn ldapmodify(&self, ldif: &str) {
        self.tool("ldapmodify", ldif);
    }

    /// Adds LDIF entries with the `ldapadd` tool.
    pub fn ldapadd(&self, ldif: &str) {
        self.tool("ldapadd", ldif);
    }

    /// The temporary directory holding the configuration, data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn tool(&self, tool: &str, ldif: &str) {
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url(), "-D", ADMIN, "-w", PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool}: {e} (apt-get install ldap-utils)"));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write LDIF");
        let out = child.wait_with_output().expect("wait");
        if !out.status.success() {
            panic!(
                "{tool} failed ({}): {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }

    fn admin(&self) -> LdapConn {
        let mut conn = LdapConn::new(&self.url()).expect("connect to slapd");
        conn.simple_bind(ADMIN, PASSWORD)
            .expect("bind")
            .success()
            .expect("bind accepted");
        conn
    }

    /// Spawns slapd on `self.port` and waits until it answers a bind.
    fn launch(&mut self) -> Result<(), String> {
        let pidfile = self.dir.path().join("slapd.pid");
        let _ = std::fs::remove_file(&pidfile);
        let log = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join(name))
                .expect("log file")
        };
        let mut child = Command::new(SLAPD)
            .args(["-d", "0", "-h", &format!("ldap://127.0.0.1:{}/", self.port)])
            .arg("-f")
            .arg(self.conf())
            .stdin(Stdio::null())
            .stdout(log("slapd.out"))
            .stderr(log("slapd.err"))
            .spawn()
            .map_err(|e| format!("{SLAPD}: {e}"))?;
        let until = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let err =
                    std::fs::read_to_string(self.dir.path().join("slapd.err")).unwrap_or_default();
                return Err(format!(
                    "slapd exited ({status}) on port {}: {err}",
                    self.port
                ));
            }
            // slapd writes its pid file only once it holds the port, so
            // the server answering is this one and not a parallel test's
            // that happened to pick the same port.
            let ours =
                std::fs::read_to_string(&pidfile).is_ok_and(|p| p.trim() == child.id().to_string());
            if ours && answers(&self.url()) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= until {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("slapd did not answer within {READY_WITHIN:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slapd.conf")
    }

    fn add_base(&self) {
        let mut conn = self.admin();
        let set = |v: &[&'static str]| v.iter().copied().collect::<HashSet<&str>>();
        conn.add(
            SUFFIX,
            vec![
                ("objectClass", set(&["dcObject", "organization"])),
                ("dc", set(&["example"])),
                ("o", set(&["Example"])),
            ],
        )
        .expect("add suffix")
        .success()
        .expect("suffix added");
        for ou in ["people", "groups", "disabled"] {
            conn.add(
                &format!("ou={ou},{SUFFIX}"),
                vec![
                    ("objectClass", set(&["organizationalUnit"])),
                    ("ou", set(&[ou])),
                ],
            )
            .expect("add ou")
            .success()
            .expect("ou added");
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answers(url: &str) -> bool {
    let Ok(mut conn) = LdapConn::with_settings(
        ldap3::LdapConnSettings::new().set_conn_timeout(Duration::from_millis(200)),
        url,
    ) else {
        return false;
    };
    matches!(conn.simple_bind(ADMIN, PASSWORD), Ok(r) if r.rc == 0)
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn config(dir: &Path) -> String {
    let d = dir.display();
    // maxsize: the default map of 10 MiB fills up at a few thousand entries;
    // the file is sparse, so a large map costs nothing.
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 1073741824
suffix \"{SUFFIX}\"
rootdn \"{ADMIN}\"
rootpw {PASSWORD}
directory {d}/data
sizelimit unlimited
index objectClass,uid,cn,entryUUID eq
"
    )
}
