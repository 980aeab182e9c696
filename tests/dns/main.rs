//! The DNS answers, against the answer engine in process and a real server on loopback: the
//! protocol's edges, zone answers, garbage input, the prepared and kept responses against the
//! general path, listen addresses, steering policies, and the README's config examples; the
//! defences: response rate limiting, DNS Cookies (with dig and kdig), TCP limits.

#[path = "../support/mod.rs"]
mod support;

mod answer_paths;
mod answers;
mod cookies;
mod garbage;
mod listen;
mod paths_support;
mod prepared;
mod protocol;
mod readme;
mod routing_quality;
mod rrl;
mod smoke;
mod steering;
mod tcp_limits;
mod tsig;
mod xfr;
