//! A Knot DNS primary on a free loopback port, started by the test (never as a service) and
//! killed when dropped: `knotd` serving one zone from a file, transfers allowed from loopback,
//! NOTIFY sent to the address given. Knot computes the differences between the zone file's
//! versions (`zonefile-load: difference`), so an edit is served by IXFR.
//!
//! [`KnotPrimary::start`] returns `None`, after saying so on stderr, when `knotd` is not
//! installed (.ci/run installs the `knot` package); a test then skips.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::wait_for;

/// A program from PATH or /usr/sbin (a non-root PATH may lack it).
pub fn sbin(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A free loopback port, UDP and TCP (bound, read, released).
pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running `knotd` serving one zone as its primary.
pub struct KnotPrimary {
    child: Child,
    dir: tempfile::TempDir,
    /// Where it answers, UDP and TCP.
    pub addr: SocketAddr,
    origin: String,
}

impl KnotPrimary {
    /// Serve zone `origin` with master-file `text` on a free loopback port, sending NOTIFY to
    /// `notify` on every change. Waits until the zone answers.
    pub fn start(origin: &str, text: &str, notify: SocketAddr) -> Option<KnotPrimary> {
        KnotPrimary::start_keyed(origin, text, notify, None)
    }

    /// [`KnotPrimary::start`] with a TSIG key `(name, base64 secret)`, hmac-sha256: transfers
    /// only for requests signed with it, and its NOTIFY signed with it.
    pub fn start_keyed(
        origin: &str,
        text: &str,
        notify: SocketAddr,
        key: Option<(&str, &str)>,
    ) -> Option<KnotPrimary> {
        let Some(knotd) = sbin("knotd") else {
            eprintln!("knotd is not installed: skipped");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        std::fs::write(dir.path().join("zone.zone"), text).unwrap();
        // The journal (where the differences for IXFR go) needs its folder.
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let (keys, remote_key, acl_key) = match key {
            Some((name, secret)) => (
                format!("key:\n  - id: {name}\n    algorithm: hmac-sha256\n    secret: {secret}\n"),
                format!("    key: {name}\n"),
                format!("    key: {name}\n"),
            ),
            None => Default::default(),
        };
        let conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
             database:\n    storage: \"{d}/db\"\n\
             control:\n    listen: \"{d}/knot.sock\"\n\
             log:\n  - target: stderr\n    any: info\n\
             {keys}\
             remote:\n  - id: secondary\n    address: {}@{}\n{remote_key}\
             acl:\n  - id: loopback\n    address: 127.0.0.0/8\n    action: transfer\n{acl_key}\
             template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    zonefile-load: difference\n    journal-content: changes\n\
             zone:\n  - domain: {origin}\n    file: zone.zone\n    notify: secondary\n    acl: loopback\n",
            notify.ip(),
            notify.port(),
        );
        std::fs::write(dir.path().join("knot.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.path().join("knot.log")).unwrap();
        let child = Command::new(knotd)
            .arg("-c")
            .arg(dir.path().join("knot.conf"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let knot = KnotPrimary {
            child,
            dir,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            origin: origin.to_string(),
        };
        let up = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(Duration::from_secs(10), "Knot to serve the zone", || {
                let q = super::query(origin, hickory_proto::rr::RecordType::SOA, None);
                super::udp_raw_timeout(knot.addr, &q.to_vec().unwrap(), Duration::from_millis(200))
                    .and_then(|b| hickory_proto::op::Message::from_vec(&b).ok())
                    .is_some_and(|m| !m.answers.is_empty())
            })
        }));
        assert!(up.is_ok(), "knotd log:\n{}", knot.log());
        Some(knot)
    }

    /// Replace the zone file with `text` and have Knot load it (its differences from the last
    /// version go to the journal, for IXFR) and send NOTIFY; returns once the reload is done.
    pub fn edit(&self, text: &str) {
        std::fs::write(self.dir.path().join("zone.zone"), text).unwrap();
        let knotc = sbin("knotc").expect("knotc comes with knotd");
        let out = Command::new(knotc)
            .arg("-s")
            .arg(self.dir.path().join("knot.sock"))
            .arg("-b")
            .arg("zone-reload")
            .arg(&self.origin)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "knotc zone-reload: {}{}\nknotd log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Knot's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }

    /// The folder Knot runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for KnotPrimary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
