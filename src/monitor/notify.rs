//! Webhook delivery of state changes, on a task of its own that the core never waits on.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Webhook;

/// Queue of state changes waiting for webhook delivery; further changes are dropped (and logged).
pub(super) const NOTIFY_QUEUE: usize = 1024;
/// Webhook deliveries in flight at once.
const NOTIFY_PARALLEL: usize = 8;

/// One state change, as logged and as POSTed to webhooks.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub endpoint: String,
    pub pool: String,
    pub from: String,
    pub to: String,
    pub reason: String,
    /// The probe result that caused it.
    pub detail: String,
    /// Seconds since the Unix epoch.
    pub time: u64,
}

/// Deliver events to every webhook, with a timeout and bounded retries, never blocking the core.
pub(super) async fn notifier(
    hooks: watch::Receiver<Vec<Webhook>>,
    mut rx: mpsc::Receiver<Event>,
    cancel: CancellationToken,
) {
    let client = match crate::health::probe::http::plain_client() {
        Ok(c) => c,
        Err(e) => return tracing::error!("webhooks disabled: {e}"),
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(NOTIFY_PARALLEL));
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            e = rx.recv() => match e { Some(e) => e, None => return },
        };
        let body = Arc::new(serde_json::to_vec(&ev).expect("event serializes"));
        let current = hooks.borrow().clone();
        for hook in &current {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let (client, hook, body) = (client.clone(), hook.clone(), Arc::clone(&body));
            tokio::spawn(async move {
                let mut delay = Duration::from_millis(200);
                let mut result = "failed";
                for attempt in 0..=hook.retries {
                    let sent = client
                        .post(&hook.url)
                        .header("content-type", "application/json")
                        .timeout(hook.timeout)
                        .body((*body).clone())
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => {
                            result = "delivered";
                            break;
                        }
                        Ok(r) => {
                            tracing::warn!(url = %hook.url, attempt, status = %r.status(), "webhook refused")
                        }
                        Err(e) => tracing::warn!(url = %hook.url, attempt, "webhook failed: {e}"),
                    }
                    if attempt < hook.retries {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
                if result == "failed" {
                    tracing::error!(url = %hook.url, attempts = hook.retries + 1, "webhook not delivered: every attempt failed");
                }
                metrics::counter!("meridian_health_webhook_deliveries_total", "result" => result)
                    .increment(1);
                drop(permit);
            });
        }
    }
}
