//! A Knot DNS server (`knotd`) started by a test on its own loopback port, never as a service:
//! a stock secondary (or primary) to replicate with. Tests skip with a message when knotd is
//! not installed (`.ci/run` installs Debian's `knot`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use super::server::{query, udp_raw_timeout};

/// `knotd` from PATH or /usr/sbin (a non-root PATH may lack it).
pub fn knotd() -> Option<PathBuf> {
    super::knot_primary::sbin("knotd")
}

/// A TSIG key as Knot's `key:` section and `kdig -y` take it.
#[derive(Debug, Clone, Copy)]
pub struct KnotKey<'a> {
    pub name: &'a str,
    pub algorithm: &'a str,
    /// Base64.
    pub secret: &'a str,
}

/// A running knotd, killed when dropped; its folder (configuration, database, zones, log)
/// goes with it.
pub struct Knot {
    child: std::process::Child,
    dir: tempfile::TempDir,
    /// Where it answers, UDP and TCP.
    pub addr: SocketAddr,
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Knot {
    /// Start `knotd` with the configuration `rest` (every section after `server`, `database`
    /// and `log`, which this writes), given the folder knotd runs in.
    pub fn start(knotd: &Path, rest: impl FnOnce(&Path) -> String) -> Knot {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Knot::start_on(knotd, port, rest)
    }

    /// [`Knot::start`] on `port` (known before Knot starts, for a primary that sends NOTIFY).
    pub fn start_on(knotd: &Path, port: u16, rest: impl FnOnce(&Path) -> String) -> Knot {
        let dir = tempfile::tempdir().unwrap();
        // Knot opens its catalog database in the storage folder only if it exists.
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let d = dir.path().display();
        let conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
             database:\n    storage: \"{d}/db\"\n\
             log:\n  - target: stderr\n    any: info\n{}",
            rest(dir.path())
        );
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("knot.log")).unwrap();
        let child = std::process::Command::new(knotd)
            .arg("-c")
            .arg(&conf_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Knot {
            child,
            dir,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
        }
    }

    /// A secondary of `zones` (origin, primary's TCP port on 127.0.0.1), each transferred
    /// with `key` when given; zones kept in memory and the journal only.
    pub fn secondary(knotd: &Path, zones: &[(&str, u16)], key: Option<KnotKey>) -> Knot {
        Knot::start(knotd, |dir| {
            let d = dir.display();
            let mut c = String::new();
            if let Some(k) = key {
                c.push_str(&format!(
                    "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n",
                    k.name, k.algorithm, k.secret
                ));
            }
            c.push_str("remote:\n");
            for (i, (_, port)) in zones.iter().enumerate() {
                c.push_str(&format!(
                    "  - id: primary{i}\n    address: 127.0.0.1@{port}\n"
                ));
                if let Some(k) = key {
                    c.push_str(&format!("    key: {}\n", k.name));
                }
            }
            c.push_str(&format!(
                "template:\n  - id: default\n    storage: \"{d}/zones\"\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n"
            ));
            c.push_str("zone:\n");
            for (i, (origin, _)) in zones.iter().enumerate() {
                c.push_str(&format!("  - domain: {origin}\n    master: primary{i}\n"));
            }
            c
        })
    }

    /// Everything knotd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }

    /// Ask knotd over UDP; `None` when it does not answer within 200 ms.
    pub fn ask(&self, name: &str, rtype: RecordType) -> Option<Message> {
        let q = query(name, rtype, None);
        let timeout = Duration::from_millis(200);
        udp_raw_timeout(self.addr, &q.to_vec().unwrap(), timeout)
            .map(|b| Message::from_vec(&b).unwrap())
    }

    /// The serial of the SOA knotd serves for `zone`, when it serves one.
    pub fn serial(&self, zone: &str) -> Option<u32> {
        let m = self.ask(zone, RecordType::SOA)?;
        m.answers.iter().find_map(|r| match &r.data {
            hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
    }
}
