//! A real SCIM 2.0 server for tests (PyPI scim2-server 0.8.3), and a fault
//! proxy to put in front of it.
//!
//! [`ScimServer::start`] runs the server as a child process on a free port
//! with its own bearer token, and offers plain HTTP helpers so a test can
//! change the server by hand. The server keeps everything in memory: a
//! [`ScimServer::restart`] comes back on the same port and token but EMPTY.
//!
//! [`FaultProxy`] forwards HTTP/1.1 requests to the server and can be told to
//! answer the next few itself with 429 or 5xx, so retries are proven against
//! the real server behind it. It reads `Content-Length` bodies only (what
//! ureq sends) and closes every connection after one answer.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const READY_WITHIN: Duration = Duration::from_secs(10);

pub struct ScimServer {
    exe: PathBuf,
    port: u16,
    token: String,
    child: Option<Child>,
    /// Holds the server's stdout and stderr logs.
    dir: tempfile::TempDir,
    agent: ureq::Agent,
}

impl ScimServer {
    /// Starts a server and waits until it answers; panics with the reason
    /// (not installed, did not start, with its log) otherwise.
    pub fn start() -> ScimServer {
        let exe = executable();
        static N: AtomicU64 = AtomicU64::new(0);
        let token = format!(
            "test-token-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        let mut server = ScimServer {
            exe,
            port: 0,
            token,
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
            agent: ureq::Agent::new_with_config(config),
        };
        // Another test may take the port between our probe and the server's
        // bind; a fresh port then is the cure.
        for _ in 0..5 {
            server.port = free_port();
            if server.launch() {
                return server;
            }
        }
        panic!("scim2-server did not start: {}", server.log());
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/v2`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Stops the server: SIGTERM (a background job ignores SIGINT), then waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid, which we have not yet
            // waited for, so the pid cannot have been reused.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.wait();
        }
    }

    /// Stops and starts the server on the same port and token. It holds its
    /// resources in memory only, so it comes back with none.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY_WITHIN;
        while !self.launch() {
            assert!(
                Instant::now() < deadline,
                "scim2-server did not restart: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// GET `path` (below `url()`, e.g. `/Users/ID`); panics unless 2xx.
    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.request("GET", path, None);
        assert!(status < 300, "GET {path}: {status} {body}");
        body
    }

    /// POST `body` to `path`; panics unless 2xx; the created resource.
    pub fn post(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = self.request("POST", path, Some(body));
        assert!(status < 300, "POST {path}: {status} {answer}");
        answer
    }

    /// PATCH `path` with a PatchOp holding `operations`; the status.
    pub fn patch(&self, path: &str, operations: Value) -> u16 {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        });
        self.request("PATCH", path, Some(&body)).0
    }

    /// DELETE `path`; the status.
    pub fn delete(&self, path: &str) -> u16 {
        self.request("DELETE", path, None).0
    }

    /// Every User, across pages.
    pub fn users(&self) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let page = self.get(&format!("/Users?startIndex={}&count=1000", all.len() + 1));
            let resources = page["Resources"].as_array().cloned().unwrap_or_default();
            let total = page["totalResults"].as_u64().unwrap_or(0) as usize;
            let empty = resources.is_empty();
            all.extend(resources);
            if empty || all.len() >= total {
                return all;
            }
        }
    }

    /// Any method; the status and the JSON body (`Null` when empty).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("{}/{}", self.url(), path.trim_start_matches('/'));
        let auth = format!("Bearer {}", self.token);
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(b),
            ("PATCH", Some(b)) => self
                .agent
                .patch(&url)
                .header("Authorization", &auth)
                .send_json(b),
            _ => panic!("unsupported test request {method} {path}"),
        };
        let mut response = sent.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// The server's stdout and stderr so far, for failure messages.
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!(
            "stdout:\n{}\nstderr:\n{}",
            read("stdout.log"),
            read("stderr.log")
        )
    }

    /// Spawns the server on `self.port` and waits until it answers; false
    /// when it exited first (the port was taken).
    fn launch(&mut self) -> bool {
        let open = |f: &str| std::fs::File::create(self.dir.path().join(f)).expect("log file");
        let child = Command::new(&self.exe)
            .args(["--hostname", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--bearer-token", &self.token])
            .stdin(Stdio::null())
            .stdout(open("stdout.log"))
            .stderr(open("stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.exe.display()));
        self.child = Some(child);
        let probe = format!("{}/ServiceProviderConfig", self.url());
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                self.child = None;
                return false;
            }
            if let Ok(r) = self.agent.get(&probe).call()
                && r.status() == 200
            {
                return true;
            }
            if Instant::now() > deadline {
                self.stop();
                panic!("scim2-server did not answer within 10 s: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `$IDSYNC_SCIM_SERVER`, else the venv `.ci/run` installs.
fn executable() -> PathBuf {
    let exe = match std::env::var_os("IDSYNC_SCIM_SERVER") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/peers/scim-venv/bin/scim2-server"),
    };
    if !exe.is_file() {
        panic!(
            "scim2-server is not installed (looked for {}): run .ci/run, or \
             python3 -m venv target/peers/scim-venv && \
             target/peers/scim-venv/bin/pip install scim2-server==0.8.3",
            exe.display()
        );
    }
    exe
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The request target, query included.
    pub path: String,
    pub body: String,
    /// False when the proxy answered it with a fault.
    pub forwarded: bool,
}

impl Seen {
    /// The body as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct ProxyState {
    /// Faults left to answer: (count, status, Retry-After).
    fault: Mutex<(u32, u16, Option<u32>)>,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
}

pub struct FaultProxy {
    port: u16,
    state: Arc<ProxyState>,
}

impl FaultProxy {
    /// Listens on a free port and forwards to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let state = Arc::new(ProxyState::default());
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(conn, upstream_port, &state));
            }
        });
        FaultProxy { port, state }
    }

    /// `http://127.0.0.1:PORT/v2`, the server's base through the proxy.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    /// Answers the next `n` requests with `status` and a SCIM error body
    /// (and `Retry-After: secs` when given) instead of forwarding them.
    pub fn fail_next(&self, n: u32, status: u16, retry_after: Option<u32>) {
        *self.state.fault.lock().expect("fault lock") = (n, status, retry_after);
    }

    /// How many requests the proxy has seen, faults included.
    pub fn requests(&self) -> usize {
        self.state.seen.lock().expect("seen lock").len()
    }

    /// The requests seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen lock").clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut client: TcpStream, upstream_port: u16, state: &ProxyState) {
    let Some((head, method, path, body)) = read_request(&client) else {
        return;
    };
    let fault = {
        let mut f = state.fault.lock().expect("fault lock");
        if f.0 > 0 {
            f.0 -= 1;
            Some((f.1, f.2))
        } else {
            None
        }
    };
    state.seen.lock().expect("seen lock").push(Seen {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
        forwarded: fault.is_none(),
    });
    match fault {
        Some((status, retry_after)) => {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": status.to_string(),
                "detail": format!("fault proxy: {status}"),
            })
            .to_string();
            let mut answer = format!(
                "HTTP/1.1 {status} Fault\r\nContent-Type: application/scim+json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(s) = retry_after {
                answer.push_str(&format!("Retry-After: {s}\r\n"));
            }
            answer.push_str("\r\n");
            answer.push_str(&body);
            let _ = client.write_all(answer.as_bytes());
        }
        None => {
            let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                // The server is down: the client sees a dropped connection.
                return;
            };
            let _ = upstream.write_all(&head);
            let _ = upstream.write_all(&body);
            let _ = std::io::copy(&mut upstream, &mut client);
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// The request's head rewritten for the upstream (`Connection: close`), its
/// method, target and body.
fn read_request(client: &TcpStream) -> Option<(Vec<u8>, String, String, Vec<u8>)> {
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    let mut head = line.clone().into_bytes();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        if h == "\r\n" || h == "\n" {
            break;
        }
        let (name, value) = h.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        if name == "content-length" {
            length = value.trim().parse().ok()?;
        }
        if name != "connection" && name != "keep-alive" {
            head.extend_from_slice(h.as_bytes());
        }
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, method, path, body))
}
