//! Reading a zone transfer's answer records (AXFR, RFC 5936; IXFR, RFC 1995) into what it
//! says, and applying incremental differences. No I/O: the client feeds each message's answer
//! records as they arrive; the task applies the result.
//!
//! An AXFR is the SOA, the zone's records, the same SOA again. An IXFR from serial `ours` is
//! one of: the new SOA alone (nothing newer, or no increments to give: "up to date"), an
//! AXFR-style full answer, or the new SOA followed by differences, each the old SOA and the
//! records deleted, then the new SOA and the records added, closed by the new SOA. Every
//! difference must start where the last ended, the first at `ours` and the last end at the new
//! serial; anything else refuses the whole transfer, and nothing of it is used.

use hickory_proto::rr::{DNSClass, Name, RData, Record as WireRecord};

use super::records::{Record, Records, writable};

/// What kind of transfer was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Axfr,
    /// IXFR from the serial held.
    Ixfr(u32),
}

/// One difference between two versions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    pub from: u32,
    pub to: u32,
    /// Deleted records, the old SOA first.
    pub deleted: Vec<Record>,
    /// Added records, the new SOA first.
    pub added: Vec<Record>,
}

/// A complete transfer.
#[derive(Debug, Clone)]
pub enum Transfer {
    /// The new SOA alone: an IXFR answer with nothing to give.
    UpToDate(u32),
    /// The whole zone.
    Full(Records),
    /// Differences from the serial asked for to the new one, in order.
    Incremental(Vec<Diff>),
}

/// Why a transfer is refused (the old data serves on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("the answer does not start with the zone's SOA")]
    NoSoaFirst,
    #[error("record {0} is outside the zone")]
    OutOfZone(String),
    #[error("record {0} is not of class IN")]
    NotIn(String),
    #[error("a SOA of serial {got} where {want} was expected")]
    Serial { got: u32, want: u32 },
    #[error("records after the closing SOA")]
    AfterEnd,
    #[error("the transfer holds more than {0} records")]
    TooManyRecords(usize),
    #[error("the transfer ended before its closing SOA")]
    Unfinished,
    #[error("an IXFR deletes {0}, which the zone does not hold")]
    DeletesMissing(String),
    #[error("the zone's serial is {got:?} where {want} was expected")]
    AppliedSerial { got: Option<u32>, want: u32 },
}

enum State {
    Start,
    /// IXFR: the new SOA read; what follows says which kind of answer this is.
    AfterFirst,
    Full(Records),
    Deleting(Diff),
    Adding(Diff),
    Done(Transfer),
}

/// A transfer being read, message by message.
pub struct Reader {
    origin: Name,
    ask: Ask,
    state: State,
    first: Option<Record>,
    new_serial: u32,
    diffs: Vec<Diff>,
    seen: usize,
    max_records: usize,
    /// Records of types the zone does not hold, left out.
    pub skipped: usize,
}

fn serial_of(r: &Record) -> Option<u32> {
    match &r.rdata {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    }
}

impl Reader {
    pub fn new(origin: Name, ask: Ask, max_records: usize) -> Reader {
        Reader {
            origin,
            ask,
            state: State::Start,
            first: None,
            new_serial: 0,
            diffs: Vec::new(),
            seen: 0,
            max_records,
            skipped: 0,
        }
    }

    /// Read one message's answer records; `Some` once the transfer is complete (it must then
    /// end with this message).
    pub fn feed(&mut self, answers: Vec<WireRecord>) -> Result<Option<Transfer>, TransferError> {
        for w in answers {
            if matches!(self.state, State::Done(_)) {
                return Err(TransferError::AfterEnd);
            }
            self.seen += 1;
            if self.seen > self.max_records {
                return Err(TransferError::TooManyRecords(self.max_records));
            }
            if w.dns_class != DNSClass::IN {
                return Err(TransferError::NotIn(w.name.to_string()));
            }
            if !self.origin.zone_of(&w.name) {
                return Err(TransferError::OutOfZone(w.name.to_string()));
            }
            let is_soa = matches!(w.data, RData::SOA(_));
            if !is_soa && !writable(w.record_type()) {
                self.skipped += 1;
                continue;
            }
            let r = Record {
                owner: w.name,
                ttl: w.ttl,
                rdata: w.data,
            };
            if is_soa && r.owner != self.origin {
                return Err(TransferError::OutOfZone(r.owner.to_string()));
            }
            self.step(r)?;
        }
        if matches!(self.state, State::AfterFirst) {
            // The new SOA alone in its message: nothing to transfer.
            self.state = State::Done(Transfer::UpToDate(self.new_serial));
        }
        Ok(match std::mem::replace(&mut self.state, State::Start) {
            State::Done(t) => Some(t),
            other => {
                self.state = other;
                None
            }
        })
    }

    fn step(&mut self, r: Record) -> Result<(), TransferError> {
        let soa = serial_of(&r);
        self.state = match std::mem::replace(&mut self.state, State::Start) {
            State::Start => {
                let Some(serial) = soa else {
                    return Err(TransferError::NoSoaFirst);
                };
                self.new_serial = serial;
                self.first = Some(r.clone());
                match self.ask {
                    Ask::Axfr => {
                        let mut all = Records::default();
                        all.insert(r);
                        State::Full(all)
                    }
                    Ask::Ixfr(_) => State::AfterFirst,
                }
            }
            State::AfterFirst => {
                let ours = match self.ask {
                    Ask::Ixfr(s) => s,
                    Ask::Axfr => unreachable!("only an IXFR waits after its first SOA"),
                };
                match soa {
                    Some(s) if s == ours && s != self.new_serial => State::Deleting(Diff {
                        from: s,
                        deleted: vec![r],
                        ..Diff::default()
                    }),
                    // SOA, SOA: an AXFR-style answer of a zone that is its SOA alone.
                    Some(s) if s == self.new_serial => {
                        let mut all = Records::default();
                        all.extend(self.first.clone());
                        State::Done(Transfer::Full(all))
                    }
                    Some(s) => {
                        return Err(TransferError::Serial { got: s, want: ours });
                    }
                    None => {
                        let mut all = Records::default();
                        all.extend(self.first.clone());
                        all.insert(r);
                        State::Full(all)
                    }
                }
            }
            State::Full(mut all) => match soa {
                Some(s) if s == self.new_serial => State::Done(Transfer::Full(all)),
                Some(s) => {
                    return Err(TransferError::Serial {
                        got: s,
                        want: self.new_serial,
                    });
                }
                None => {
                    all.insert(r);
                    State::Full(all)
                }
            },
            State::Deleting(mut d) => match soa {
                Some(s) => {
                    d.to = s;
                    d.added.push(r);
                    State::Adding(d)
                }
                None => {
                    d.deleted.push(r);
                    State::Deleting(d)
                }
            },
            State::Adding(mut d) => match soa {
                Some(s) if s == self.new_serial && d.to == s => {
                    self.diffs.push(d);
                    State::Done(Transfer::Incremental(std::mem::take(&mut self.diffs)))
                }
                Some(s) if s == d.to => {
                    self.diffs.push(d);
                    State::Deleting(Diff {
                        from: s,
                        deleted: vec![r],
                        ..Diff::default()
                    })
                }
                Some(s) => return Err(TransferError::Serial { got: s, want: d.to }),
                None => {
                    d.added.push(r);
                    State::Adding(d)
                }
            },
            State::Done(_) => return Err(TransferError::AfterEnd),
        };
        Ok(())
    }
}

impl Extend<Record> for Records {
    fn extend<I: IntoIterator<Item = Record>>(&mut self, iter: I) {
        for r in iter {
            self.insert(r);
        }
    }
}

/// Apply `diffs` to a copy of `held` (whose serial is the first difference's `from`); the new
/// records, or why they do not apply (then nothing changed).
pub fn apply(held: &Records, diffs: &[Diff]) -> Result<Records, TransferError> {
    let mut next = held.clone();
    for d in diffs {
        let at = next.soa().map(|s| s.serial);
        if at != Some(d.from) {
            return Err(TransferError::AppliedSerial {
                got: at,
                want: d.from,
            });
        }
        for r in &d.deleted {
            if !next.remove(r) {
                return Err(TransferError::DeletesMissing(format!(
                    "{} {}",
                    r.owner,
                    r.rdata.record_type()
                )));
            }
        }
        for r in &d.added {
            next.insert(r.clone());
        }
        let got = next.soa().map(|s| s.serial);
        if got != Some(d.to) {
            return Err(TransferError::AppliedSerial { got, want: d.to });
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::rdata::{A, SOA};

    use super::*;

    fn origin() -> Name {
        Name::from_str("example.net.").unwrap()
    }

    fn soa(serial: u32) -> WireRecord {
        let o = origin();
        WireRecord::from_rdata(
            o.clone(),
            3600,
            RData::SOA(SOA::new(
                Name::from_str("ns1.example.net.").unwrap(),
                Name::from_str("hostmaster.example.net.").unwrap(),
                serial,
                60,
                10,
                600,
                300,
            )),
        )
    }

    fn a(name: &str, ip: &str) -> WireRecord {
        WireRecord::from_rdata(
            Name::from_str(name).unwrap(),
            300,
            RData::A(A::from_str(ip).unwrap()),
        )
    }

    fn held(serial: u32) -> Records {
        let mut r = Records::default();
        for w in [
            soa(serial),
            a("www.example.net.", "192.0.2.1"),
            a("old.example.net.", "192.0.2.9"),
        ] {
            r.insert(Record {
                owner: w.name,
                ttl: w.ttl,
                rdata: w.data,
            });
        }
        r
    }

    fn names(r: &Records) -> Vec<String> {
        let mut v: Vec<String> = r
            .iter()
            .map(|r| format!("{} {}", r.owner, r.rdata))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn incremental_differences_apply_in_order_across_messages() {
        let mut reader = Reader::new(origin(), Ask::Ixfr(1), 100);
        // 1 → 2: old.example.net. deleted, new.example.net. added; 2 → 3: www changes address.
        assert!(
            reader
                .feed(vec![
                    soa(3),
                    soa(1),
                    a("old.example.net.", "192.0.2.9"),
                    soa(2)
                ])
                .unwrap()
                .is_none()
        );
        let t = reader
            .feed(vec![
                a("new.example.net.", "192.0.2.10"),
                soa(2),
                a("WWW.example.net.", "192.0.2.1"),
                soa(3),
                a("www.example.net.", "192.0.2.2"),
                soa(3),
            ])
            .unwrap()
            .unwrap();
        let Transfer::Incremental(diffs) = t else {
            panic!("not incremental: {t:?}")
        };
        assert_eq!(diffs.len(), 2);
        assert_eq!(
            (diffs[0].from, diffs[0].to, diffs[1].from, diffs[1].to),
            (1, 2, 2, 3)
        );
        let next = apply(&held(1), &diffs).unwrap();
        assert_eq!(next.soa().unwrap().serial, 3);
        let mut want = vec![
            "new.example.net. 192.0.2.10".to_string(),
            "www.example.net. 192.0.2.2".to_string(),
        ];
        want.push(format!("example.net. {}", soa(3).data));
        want.sort();
        assert_eq!(names(&next), want);
        // Applied to data it does not fit, nothing changes and the reason is given.
        assert!(matches!(
            apply(&held(2), &diffs),
            Err(TransferError::AppliedSerial { .. })
        ));
        let mut missing = held(1);
        missing.remove(&Record {
            owner: Name::from_str("old.example.net.").unwrap(),
            ttl: 1,
            rdata: RData::A(A::from_str("192.0.2.9").unwrap()),
        });
        assert!(matches!(
            apply(&missing, &diffs),
            Err(TransferError::DeletesMissing(_))
        ));
    }

    #[test]
    fn an_ixfr_may_be_answered_in_full_or_with_the_soa_alone() {
        let mut reader = Reader::new(origin(), Ask::Ixfr(1), 100);
        let t = reader
            .feed(vec![soa(5), a("www.example.net.", "192.0.2.7"), soa(5)])
            .unwrap()
            .unwrap();
        assert!(matches!(&t, Transfer::Full(r) if r.len() == 2), "{t:?}");
        let mut reader = Reader::new(origin(), Ask::Ixfr(5), 100);
        assert!(matches!(
            reader.feed(vec![soa(5)]).unwrap(),
            Some(Transfer::UpToDate(5))
        ));
    }

    #[test]
    fn broken_transfers_are_refused() {
        let ixfr = || Reader::new(origin(), Ask::Ixfr(1), 100);
        let axfr = || Reader::new(origin(), Ask::Axfr, 100);
        let cases: Vec<(Reader, Vec<WireRecord>, TransferError)> = vec![
            (
                axfr(),
                vec![a("www.example.net.", "192.0.2.1")],
                TransferError::NoSoaFirst,
            ),
            (
                axfr(),
                vec![soa(2), a("www.example.com.", "192.0.2.1")],
                TransferError::OutOfZone("www.example.com.".into()),
            ),
            (
                axfr(),
                vec![soa(2), soa(3)],
                TransferError::Serial { got: 3, want: 2 },
            ),
            (
                axfr(),
                vec![soa(2), soa(2), a("www.example.net.", "192.0.2.1")],
                TransferError::AfterEnd,
            ),
            (
                ixfr(),
                vec![soa(3), soa(7)],
                TransferError::Serial { got: 7, want: 1 },
            ),
            (
                ixfr(),
                vec![soa(3), soa(1), soa(2), soa(9)],
                TransferError::Serial { got: 9, want: 2 },
            ),
        ];
        for (mut reader, records, want) in cases {
            assert_eq!(reader.feed(records).unwrap_err(), want);
        }
        let mut small = Reader::new(origin(), Ask::Axfr, 2);
        assert_eq!(
            small
                .feed(vec![
                    soa(2),
                    a("a.example.net.", "192.0.2.1"),
                    a("b.example.net.", "192.0.2.1")
                ])
                .unwrap_err(),
            TransferError::TooManyRecords(2)
        );
        // Unfinished: no closing SOA yet.
        let mut open = axfr();
        assert!(
            open.feed(vec![soa(2), a("a.example.net.", "192.0.2.1")])
                .unwrap()
                .is_none()
        );
    }
}
