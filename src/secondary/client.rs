//! The secondary's side of the wire: a SOA query to a primary (UDP, then TCP when the answer is
//! truncated) and a zone transfer over TCP (IXFR from the serial held, or AXFR), every response
//! checked before use.
//!
//! Every response must carry the request's ID, QR=1, opcode QUERY, the question asked (the
//! zone's apex, class IN, the type asked) and NOERROR; a UDP datagram that fails this from
//! elsewhere is ignored (it may be forged), anything else fails the exchange. A transfer is
//! bounded in time ([`Limits::transfer_time`], the whole of it) and in records
//! ([`Limits::records`]); each TCP message is at most 64 KiB by its length prefix. What the
//! records say is read by [`super::transfer::Reader`].
//!
//! TSIG (RFC 8945) is at one place: [`Signing`] signs each request with the zone's key and
//! checks every response message (the first over the request's MAC, each later over the one
//! before, RFC 8945 §5.3.1); an answer that is not signed, or does not verify, fails the
//! exchange.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record as WireRecord, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::records::Record;
use super::transfer::{Ask, Reader, Transfer, TransferError};
use crate::wire::tsig::{Key, TsigError, Verifier, sign_query};

/// Bounds on one exchange with a primary.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A SOA query (each try, UDP then TCP).
    pub query_time: Duration,
    /// A whole transfer, connecting included.
    pub transfer_time: Duration,
    /// Most records a transfer may carry.
    pub records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            query_time: Duration::from_secs(2),
            transfer_time: Duration::from_secs(300),
            records: 2_000_000,
        }
    }
}

/// Why an exchange with a primary failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("the response does not match the request: {0}")]
    Mismatch(&'static str),
    #[error("the primary answered {0}")]
    Rcode(ResponseCode),
    #[error("the answer holds no SOA of the zone")]
    NoSoa,
    #[error("{0}")]
    Transfer(#[from] TransferError),
    #[error("TSIG: {0}")]
    Tsig(#[from] TsigError),
}

/// A zone's TSIG key for its requests, or none.
#[derive(Clone, Default)]
pub struct Signing(Option<Key>);

impl Signing {
    pub fn new(key: Option<Key>) -> Signing {
        Signing(key)
    }

    /// Sign the request `msg` (unchanged without a key); the checker of its responses.
    fn sign(&self, msg: &mut Vec<u8>) -> Checker {
        Checker(self.0.as_ref().map(|k| {
            let mac = sign_query(k, msg, crate::wire::unix_now());
            Verifier::new(k, mac)
        }))
    }
}

/// Checks the responses to one signed request (nothing without a key).
struct Checker(Option<Verifier>);

impl Checker {
    fn check(&mut self, msg: &[u8]) -> Result<(), TsigError> {
        match &mut self.0 {
            None => Ok(()),
            Some(v) => v.verify(msg, crate::wire::unix_now()).map(|_| ()),
        }
    }

    /// After the last message of the exchange: it must have been signed.
    fn finish(&self) -> Result<(), TsigError> {
        self.0.as_ref().map_or(Ok(()), |v| v.finish())
    }
}

/// A request for `rtype` at `origin`; for an IXFR, the SOA held goes in the authority section
/// (RFC 1995 §3).
fn request(id: u16, origin: &Name, rtype: RecordType, held_soa: Option<&Record>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    let mut q = Query::query(origin.clone(), rtype);
    q.query_class = DNSClass::IN;
    m.add_query(q);
    if let Some(soa) = held_soa {
        m.add_authority(WireRecord::from_rdata(
            soa.owner.clone(),
            soa.ttl,
            soa.rdata.clone(),
        ));
    }
    m.to_vec().expect("a query of a parsed name encodes")
}

/// Check the header and question of a response to request `id` for `rtype` at `origin`.
/// `question_needed`: later messages of a transfer may leave the question out (RFC 5936 §2.2).
fn check(
    m: &Message,
    id: u16,
    origin: &Name,
    rtype: RecordType,
    question_needed: bool,
) -> Result<(), ClientError> {
    if m.metadata.id != id {
        return Err(ClientError::Mismatch("ID"));
    }
    if m.metadata.message_type != MessageType::Response || m.metadata.op_code != OpCode::Query {
        return Err(ClientError::Mismatch("not a response to a query"));
    }
    match m.queries.as_slice() {
        [] if !question_needed => {}
        [q] if q.name == *origin && q.query_type == rtype && q.query_class == DNSClass::IN => {}
        _ => return Err(ClientError::Mismatch("question")),
    }
    if m.metadata.response_code != ResponseCode::NoError {
        return Err(ClientError::Rcode(m.metadata.response_code));
    }
    Ok(())
}

/// The primary's SOA serial for `origin`: over UDP, over TCP when the answer is truncated.
pub async fn query_soa(
    primary: SocketAddr,
    origin: &Name,
    signing: &Signing,
    limits: &Limits,
) -> Result<u32, ClientError> {
    let id = crate::wire::random_id();
    let mut req = request(id, origin, RecordType::SOA, None);
    let checker = signing.sign(&mut req);
    let m = match soa_udp(primary, &req, id, origin, checker, limits.query_time).await? {
        Some(m) => m,
        None => {
            // Truncated: the request again over TCP, signed afresh.
            let mut req = request(id, origin, RecordType::SOA, None);
            let mut checker = signing.sign(&mut req);
            let mut s = connect(primary, limits.query_time).await?;
            let deadline = Instant::now() + limits.query_time;
            write_framed(&mut s, &req, deadline).await?;
            let bytes = read_framed(&mut s, deadline).await?;
            checker.check(&bytes)?;
            let m = Message::from_vec(&bytes).map_err(|e| ClientError::Malformed(e.to_string()))?;
            check(&m, id, origin, RecordType::SOA, true)?;
            m
        }
    };
    m.answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(s) if r.name == *origin => Some(s.serial),
            _ => None,
        })
        .ok_or(ClientError::NoSoa)
}

/// The SOA query over UDP: the checked answer, or `None` when it was truncated.
async fn soa_udp(
    primary: SocketAddr,
    req: &[u8],
    id: u16,
    origin: &Name,
    mut checker: Checker,
    timeout: Duration,
) -> Result<Option<Message>, ClientError> {
    let local: SocketAddr = if primary.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(primary).await?;
    sock.send(req).await?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| ClientError::Timeout(timeout))??;
        let Ok(m) = Message::from_vec(&buf[..n]) else {
            continue; // not a DNS message: ignored, like one for another query
        };
        if check(&m, id, origin, RecordType::SOA, true).is_err() && m.metadata.id != id {
            continue;
        }
        check(&m, id, origin, RecordType::SOA, true)?;
        if m.metadata.truncation {
            return Ok(None);
        }
        checker.check(&buf[..n])?;
        return Ok(Some(m));
    }
}

async fn connect(primary: SocketAddr, timeout: Duration) -> Result<TcpStream, ClientError> {
    tokio::time::timeout(timeout, TcpStream::connect(primary))
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
        .map_err(ClientError::Io)
}

async fn write_framed(s: &mut TcpStream, msg: &[u8], deadline: Instant) -> Result<(), ClientError> {
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    framed.extend_from_slice(msg);
    tokio::time::timeout_at(deadline, s.write_all(&framed))
        .await
        .map_err(|_| ClientError::Timeout(Duration::ZERO))??;
    Ok(())
}

/// One length-prefixed message (at most 64 KiB by its prefix).
async fn read_framed(s: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, ClientError> {
    let read = async {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| ClientError::Timeout(Duration::ZERO))?
        .map_err(ClientError::Io)
}

/// What a transfer brought.
#[derive(Debug)]
pub struct Transferred {
    pub transfer: Transfer,
    /// Records of types the zone does not hold, left out.
    pub skipped: usize,
    /// Messages read.
    pub messages: usize,
}

/// Transfer `origin` from `primary`: an IXFR from `held_soa`'s serial when one is given, else
/// an AXFR.
pub async fn transfer(
    primary: SocketAddr,
    origin: &Name,
    held_soa: Option<&Record>,
    signing: &Signing,
    limits: &Limits,
) -> Result<Transferred, ClientError> {
    let deadline = Instant::now() + limits.transfer_time;
    let held_serial = held_soa.and_then(|r| match &r.rdata {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    });
    let (ask, rtype) = match held_serial {
        Some(s) => (Ask::Ixfr(s), RecordType::IXFR),
        None => (Ask::Axfr, RecordType::AXFR),
    };
    let id = crate::wire::random_id();
    let mut req = request(
        id,
        origin,
        rtype,
        held_soa.filter(|_| held_serial.is_some()),
    );
    let mut checker = signing.sign(&mut req);
    let mut s = tokio::time::timeout_at(deadline, TcpStream::connect(primary))
        .await
        .map_err(|_| ClientError::Timeout(limits.transfer_time))??;
    write_framed(&mut s, &req, deadline).await?;
    let mut reader = Reader::new(origin.clone(), ask, limits.records);
    let mut messages = 0;
    loop {
        let bytes = read_framed(&mut s, deadline).await.map_err(|e| match e {
            ClientError::Timeout(_) => ClientError::Timeout(limits.transfer_time),
            e => e,
        })?;
        checker.check(&bytes)?;
        let m = Message::from_vec(&bytes).map_err(|e| ClientError::Malformed(e.to_string()))?;
        check(&m, id, origin, rtype, messages == 0)?;
        messages += 1;
        if let Some(transfer) = reader.feed(m.answers)? {
            checker.finish()?;
            return Ok(Transferred {
                transfer,
                skipped: reader.skipped,
                messages,
            });
        }
    }
}
