//! For the steering tests: DNS queries with EDNS Client Subnet over real UDP and TCP, and
//! decoding of the parts the tests assert (addresses, TTLs, ECS scope).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};

use super::server::{TestServer, tcp_raw};

/// MaxMind's GeoIP2 City test database.
pub fn city_db() -> String {
    format!(
        "{}/geo-data/test/GeoIP2-City-Test.mmdb",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A client subnet: address and source prefix length.
pub type Ecs = Option<(&'static str, u8)>;

/// Build a query for `name`/`qtype` with EDNS (payload 1232) and, if given, a Client Subnet.
pub fn query(id: u16, name: &str, qtype: RecordType, ecs: Ecs) -> Message {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    if let Some((ip, source)) = ecs {
        let ip: IpAddr = ip.parse().unwrap();
        e.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(ip, source, 0)));
    }
    m.set_edns(e);
    m
}

/// One UDP socket reused for many queries (thousands, for the proportion tests), plus TCP.
pub struct Client {
    socket: UdpSocket,
    udp: SocketAddr,
    tcp: SocketAddr,
    next_id: u16,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(srv: &TestServer) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        Client {
            socket,
            udp: srv.udp,
            tcp: srv.tcp,
            next_id: 1,
            buf: vec![0; 65535],
        }
    }

    /// Ask over UDP; skips stale replies (other IDs), fails after 2 s of silence.
    pub fn udp(&mut self, name: &str, qtype: RecordType, ecs: Ecs) -> Message {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        let bytes = query(id, name, qtype, ecs).to_vec().unwrap();
        self.socket.send_to(&bytes, self.udp).unwrap();
        for _ in 0..100 {
            let (n, _) = self
                .socket
                .recv_from(&mut self.buf)
                .expect("UDP answer within 2 s");
            let m = Message::from_vec(&self.buf[..n]).unwrap();
            if m.metadata.id == id {
                return m;
            }
        }
        panic!("no reply with id {id}");
    }

    /// Ask over a fresh TCP connection.
    pub fn tcp(&mut self, name: &str, qtype: RecordType, ecs: Ecs) -> Message {
        let bytes = query(7, name, qtype, ecs).to_vec().unwrap();
        Message::from_vec(&tcp_raw(self.tcp, &bytes)).unwrap()
    }

    /// Ask the same question `n` times over UDP; how often each answer set (sorted RDATA,
    /// joined with spaces) came back.
    pub fn count(
        &mut self,
        n: usize,
        name: &str,
        qtype: RecordType,
        ecs: Ecs,
    ) -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        for _ in 0..n {
            let m = self.udp(name, qtype, ecs);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m}");
            *seen.entry(rdata(&m).join(" ")).or_insert(0) += 1;
        }
        seen
    }
}

/// Answer RDATA in presentation form, sorted.
pub fn rdata(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

/// The single answer record's RDATA; panics unless there is exactly one.
pub fn one(m: &Message) -> String {
    assert_eq!(m.answers.len(), 1, "want one answer: {m}");
    m.answers[0].data.to_string()
}

/// TTL shared by every answer record; panics on an empty answer or mixed TTLs.
pub fn ttl(m: &Message) -> u32 {
    assert!(!m.answers.is_empty(), "empty answer: {m}");
    let t = m.answers[0].ttl;
    assert!(m.answers.iter().all(|r| r.ttl == t), "mixed TTLs: {m}");
    t
}

/// The reply's Client Subnet option as (address, source prefix, scope prefix).
pub fn ecs_of(m: &Message) -> Option<(IpAddr, u8, u8)> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(cs) => Some((cs.addr(), cs.source_prefix(), cs.scope_prefix())),
        _ => None,
    }
}

/// The ECS scope of the reply; panics when the reply has no ECS option.
pub fn scope(m: &Message) -> u8 {
    ecs_of(m)
        .unwrap_or_else(|| panic!("no ECS option in the reply: {m}"))
        .2
}

/// NODATA: NOERROR, AA, empty answer, the zone's SOA in the authority section.
pub fn assert_nodata(m: &Message, ctx: &str) {
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "{ctx}: {m}"
    );
    assert!(m.metadata.authoritative, "{ctx}: AA: {m}");
    assert!(m.answers.is_empty(), "{ctx}: answer not empty: {m}");
    assert_eq!(m.authorities.len(), 1, "{ctx}: {m}");
    let soa = &m.authorities[0];
    assert!(matches!(soa.data, RData::SOA(_)), "{ctx}: {m}");
    assert_eq!(soa.name.to_string(), "example.com.", "{ctx}");
}
