//! Support for tests/ops/package.rs: finding the Debian package, installing it into a scratch
//! root with `dpkg --root`, and running the installed binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::exit_within;

/// The package this test checks: `MERIDIAN_DEB` (.ci/run sets it to what `cargo deb` built),
/// else `target/debian/meridian_<version>-1_<arch>.deb` as `cargo deb` names it; `None` when
/// neither exists.
pub fn find_deb() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MERIDIAN_DEB") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "MERIDIAN_DEB={} is not a file", p.display());
        return Some(p);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian");
    let prefix = format!("meridian_{}-1_", env!("CARGO_PKG_VERSION"));
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".deb")
        })
}

/// Whether this process runs as root (CI does).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) takes no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// stdout then stderr, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run `cmd`; its output, which must be a success.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", show(&out));
    out
}

/// A scratch root the package is installed into: dpkg's database and everything the maintainer
/// scripts write (users, the state directory) live inside it.
pub struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    /// An empty root with an empty dpkg database, readable by every user (the unprivileged
    /// server run must reach its files).
    pub fn new() -> Root {
        let dir = tempfile::tempdir().unwrap();
        let admin = dir.path().join("var/lib/dpkg");
        for d in ["info", "updates", "triggers"] {
            std::fs::create_dir_all(admin.join(d)).unwrap();
        }
        std::fs::write(admin.join("status"), "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Root { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `path` (absolute, as installed) inside the root.
    pub fn at(&self, path: &str) -> PathBuf {
        self.dir.path().join(path.trim_start_matches('/'))
    }

    /// `dpkg --root` with `args`: the maintainer scripts run outside a chroot with DPKG_ROOT set
    /// (the root holds no shell), and the dependencies are not in this root's database.
    pub fn dpkg(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", self.path().display()))
            .arg(format!("--log={}", self.at("var/log/dpkg.log").display()))
            .args(["--force-script-chrootless", "--force-depends"]);
        cmd.args(args)
            // dpkg looks for ldconfig and start-stop-daemon on PATH; a user's PATH may lack sbin.
            .env(
                "PATH",
                format!(
                    "{}:/usr/sbin:/sbin",
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .output()
            .unwrap_or_else(|e| panic!("cannot run dpkg: {e}"))
    }

    /// The root's `/etc/passwd` entry for `user`, split into its seven fields.
    pub fn passwd(&self, user: &str) -> Option<Vec<String>> {
        entry(&self.at("etc/passwd"), user)
    }

    /// The root's `/etc/group` entry for `group`, split into its fields.
    pub fn group(&self, group: &str) -> Option<Vec<String>> {
        entry(&self.at("etc/group"), group)
    }
}

fn entry(file: &Path, name: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f[0] == name)
}

/// Replace the one occurrence of `from` in `text` by `to`; panics when there is not exactly one,
/// so a config that changed shape fails the test instead of going untested.
#[track_caller]
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "want {from:?} once in:\n{text}"
    );
    text.replace(from, to)
}

/// A `meridian serve` started from the installed binary; killed by its PID when dropped.
pub struct Served {
    pub child: Child,
    pub udp: SocketAddr,
}

impl Served {
    /// Run `cmd` (a `meridian serve`) and wait for it to report its UDP address; `Err` with what it
    /// printed when it exits or says nothing for 10 s.
    pub fn start(mut cmd: Command) -> Result<Served, String> {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut printed = String::new();
        let mut udp = None;
        while Instant::now() < deadline {
            let Some(Ok(line)) = lines.next() else { break };
            printed.push_str(&line);
            printed.push('\n');
            // The DNS listener's line (the admin API's says "listening" too, with no udp=).
            if let Some(rest) = line.split(" udp=").nth(1) {
                udp = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                break;
            }
        }
        let Some(udp) = udp else {
            let _ = child.kill();
            let status = child.wait().unwrap();
            return Err(format!("{cmd:?}: {status}\n{printed}"));
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Served { child, udp })
    }

    /// SIGTERM by PID; the exit status, within 10 s.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) takes plain integers; the PID is a child this test started and has not
        // reaped yet.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM to {pid}");
        exit_within(&mut self.child, Duration::from_secs(10)).expect("server did not exit")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // A panicking test still ends its server (Child::kill signals this child's PID only).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
