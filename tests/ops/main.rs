//! Operating Meridian: the admin API, reloads, the `meridian` command as a process, the
//! anycast check script with BIRD and ExaBGP, and the Debian package installed into a scratch
//! root; the alert rules under promtool's rule unit tests; dependency faults (`faults`) and
//! input limits (`limits`) against the binary (`served`).

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod alerts;
mod anycast;
mod anycast_support;
mod cli;
mod faults;
mod fleet;
mod fleet_kit;
mod fleet_shard;
mod fleet_votes;
mod limits;
mod nsd;
mod package;
mod package_kit;
mod reload;
mod replication;
mod secondary;
mod served;
mod simulate;
