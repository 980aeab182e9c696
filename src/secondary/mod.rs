//! Meridian as a secondary: zones taken from primaries by zone transfer.
pub mod client;
pub mod records;
pub mod transfer;
