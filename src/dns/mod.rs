//! DNS on the wire: parsing queries, the answer engine, and the UDP and TCP servers.
//!
//! [`wire`] reads untrusted bytes into a stack-allocated query; [`answer`] turns a query into a
//! response in a caller-owned buffer (the one engine both transports share); [`udp`] and [`tcp`]
//! own the sockets. Routing decisions belong elsewhere: this module only carries them out.

pub mod answer;
pub mod tcp;
pub mod udp;
pub mod wire;
