//! Health checking: each prober against real targets on loopback, the monitor end to end
//! (state changes, webhooks, overrides, the state file), its timing on paused time, the health
//! view it publishes and the publisher reads, and steering that follows health.

#[path = "../support/mod.rs"]
mod support;

mod monitor;
mod monitor_time;
mod probe_http;
mod probe_net;
mod steering_health;
mod view;
