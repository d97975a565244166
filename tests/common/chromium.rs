//! Headless Chromium for tests that must see a page as a browser does:
//! [`dump_dom`] gives the DOM after the page's scripts ran, [`screenshot`]
//! a PNG of the window. Debian's `chromium` at `/usr/bin/chromium`; `.ci/run`
//! installs it, and a test fails (never skips) when it is missing.
//!
//! Each call starts a fresh browser with its own throw-away profile, in its
//! own process group, and kills the whole group when it is done or after
//! [`TIMEOUT`]: a hung browser, or a helper process it left behind, fails the
//! test instead of hanging CI.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Without the networking switches Chromium keeps retrying connections that
/// this machine refuses and never exits; the sandbox needs privileges a test
/// runner (often root in a container) does not have; a small /dev/shm in a
/// container crashes the renderer on long pages.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

/// The page's DOM, serialized after it loaded and its inline scripts ran.
/// (Chromium needs JavaScript to dump the DOM, so a page without script is
/// tested by removing its scripts from the file.)
pub fn dump_dom(html: &Path) -> String {
    let out = run(vec!["--dump-dom".into(), file_url(html).into()]);
    if !out.contains("</html>") {
        panic!(
            "chromium --dump-dom {} gave no document:\n{out}",
            html.display()
        );
    }
    out
}

/// A `width` x `height` PNG of the page at `png`.
pub fn screenshot(html: &Path, png: &Path, width: u32, height: u32) {
    let _ = std::fs::remove_file(png);
    run(vec![
        format!("--screenshot={}", png.display()).into(),
        format!("--window-size={width},{height}").into(),
        file_url(html).into(),
    ]);
    if !png.exists() {
        panic!(
            "chromium --screenshot of {} wrote no {}",
            html.display(),
            png.display()
        );
    }
}

/// Width and height from a PNG's header, if `bytes` starts like a PNG.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    // The signature, then the IHDR chunk: length (4), type (4), width, height.
    if bytes.len() < 24 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

/// Runs Chromium with `args` after the common flags and returns its stdout.
fn run(args: Vec<OsString>) -> String {
    if !Path::new(CHROMIUM).exists() {
        panic!(
            "{CHROMIUM} is not installed: run .ci/run, which installs it, or \
             apt-get install -y chromium"
        );
    }
    let profile = tempfile::tempdir().expect("chromium profile dir");
    let mut cmd = Command::new(CHROMIUM);
    cmd.args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("start chromium");
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let finished = wait_for_exit(&child, TIMEOUT);
    // Its helpers share our pipes; ending the group lets the readers finish.
    // The leader is not reaped yet, so the group id cannot belong to anyone
    // else.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let status = child.wait().expect("wait for chromium");
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !finished {
        panic!(
            "chromium {args:?} did not finish within {TIMEOUT:?}; its stderr:\n{}",
            tail(&stderr)
        );
    }
    if !status.success() {
        panic!(
            "chromium {args:?} failed ({status}); its stderr:\n{}",
            tail(&stderr)
        );
    }
    stdout
}

/// Whether `child` exited within `limit`, leaving it unreaped (WNOWAIT) so
/// its pid, and so its process group's id, stay ours until we wait.
fn wait_for_exit(child: &Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        // SAFETY: waitid only writes into `info`, which lives on this stack.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                child.id() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            r == 0 && info.si_pid() != 0
        };
        if exited {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads a pipe to its end on a thread, so a page larger than the pipe's
/// buffer cannot block the browser.
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `file://` URL of `path`, made absolute, with the bytes a URL path cannot
/// hold percent-encoded.
pub fn file_url(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut url = String::from("file://");
    for &b in abs.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// The `<section id="{id}">` of a page's DOM, up to its end.
pub fn dom_section<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("<section id=\"{id}\"");
    let start = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no {open} in the DOM"));
    let rest = &dom[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}
