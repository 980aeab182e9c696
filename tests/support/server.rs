//! A real Meridian server in process on ephemeral loopback ports, and DNS clients over real UDP
//! and TCP sockets. Messages are built and decoded with hickory-proto, an implementation
//! independent of Meridian's hand-written wire code.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use meridian::config::Config;
use meridian::server::Server;
use meridian::snapshot::Snapshot;

pub const TIMEOUT: Duration = Duration::from_secs(2);

/// A server with its own runtime, config folder and bound addresses.
pub struct TestServer {
    pub server: Option<Server>,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    rt: tokio::runtime::Runtime,
}

/// Start a server for `zones` (origin, master-file text) with extra `[dns]` lines.
pub fn start(zones: &[(&str, &str)], dns_extra: &str) -> TestServer {
    start_on(&["127.0.0.1:0"], zones, dns_extra)
}

/// [`start`] on the given listen addresses (`udp`/`tcp` are the first one's; every bound address
/// is in `server.udp_addrs()` and `tcp_addrs()`).
pub fn start_on(listen: &[&str], zones: &[(&str, &str)], dns_extra: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let listen: Vec<String> = listen.iter().map(|a| format!("\"{a}\"")).collect();
    let listen = listen.join(", ");
    let mut toml = format!("[dns]\nlisten = [{listen}]\nworkers = 2\n{dns_extra}\n");
    for (i, (origin, text)) in zones.iter().enumerate() {
        let file = format!("zone{i}.zone");
        std::fs::write(dir.path().join(&file), text).unwrap();
        toml.push_str(&format!(
            "[[zone]]\norigin = \"{origin}\"\nfile = \"{file}\"\n"
        ));
    }
    let config_path = dir.path().join("meridian.toml");
    std::fs::write(&config_path, &toml).unwrap();
    let config = Config::load(&config_path).unwrap_or_else(|e| panic!("config: {e}"));
    let snapshot = meridian::snapshot::assemble(&config).unwrap_or_else(|e| panic!("zones: {e}"));
    run(&config, snapshot, dir, config_path)
}

/// A server for the configuration file at `config_path`, wherever it is (`dir` is then an
/// empty folder of its own).
pub fn start_file(config_path: &Path) -> TestServer {
    let (config, snapshot) =
        meridian::snapshot::load(config_path).unwrap_or_else(|e| panic!("config: {e}"));
    let dir = tempfile::tempdir().unwrap();
    run(&config, snapshot, dir, config_path.to_path_buf())
}

/// Start `config` serving `snapshot` on a runtime of its own.
fn run(
    config: &Config,
    snapshot: Snapshot,
    dir: tempfile::TempDir,
    config_path: PathBuf,
) -> TestServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = {
        let _guard = rt.enter();
        Server::start(config, snapshot).unwrap()
    };
    let (udp, tcp) = (server.udp_addrs()[0], server.tcp_addrs()[0]);
    TestServer {
        server: Some(server),
        udp,
        tcp,
        dir,
        config_path,
        rt,
    }
}

impl TestServer {
    /// The running server.
    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// Shut down through the one shutdown path, with a short grace period.
    pub fn stop(mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown(Duration::from_millis(500)));
        }
    }

    pub fn udp(&self, msg: &Message) -> Message {
        Message::from_vec(&udp_raw(self.udp, &msg.to_vec().unwrap()).expect("UDP answer")).unwrap()
    }

    pub fn tcp(&self, msg: &Message) -> Message {
        Message::from_vec(&tcp_raw(self.tcp, &msg.to_vec().unwrap())).unwrap()
    }

    /// Ask the same question over UDP and TCP; both answers, in that order.
    pub fn both(&self, msg: &Message) -> [Message; 2] {
        [self.udp(msg), self.tcp(msg)]
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown(Duration::from_millis(100)));
        }
    }
}

/// A query with RD set and, if `payload` is given, EDNS with that UDP payload size.
pub fn query(name: &str, rtype: RecordType, payload: Option<u16>) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_str(name).unwrap(), rtype));
    if let Some(p) = payload {
        let mut e = Edns::new();
        e.set_max_payload(p);
        m.set_edns(e);
    }
    m
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0x1234);
    NEXT.fetch_add(7919, Ordering::Relaxed)
}

/// Send raw bytes over UDP; the reply, or `None` if none came within [`TIMEOUT`].
pub fn udp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    udp_raw_timeout(addr, bytes, TIMEOUT)
}

pub fn udp_raw_timeout(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.send_to(bytes, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// One query over a fresh TCP connection; the response message bytes (without length prefix).
pub fn tcp_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    write_framed(&mut s, bytes);
    read_framed(&mut s).expect("TCP answer")
}

pub fn write_framed(s: &mut TcpStream, bytes: &[u8]) {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).unwrap();
}

/// Read one length-prefixed message; `None` on EOF or timeout.
pub fn read_framed(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Two regions, r1 (London) and r2 (Madrid), as `[[region]]` tables (tests/fixtures/regions.toml).
pub const REGIONS: &str = include_str!("../fixtures/regions.toml");

/// The example zone most tests use (tests/fixtures/example.com.zone).
pub const EXAMPLE_ZONE: &str = include_str!("../fixtures/example.com.zone");
