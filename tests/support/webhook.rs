//! A webhook sink: an HTTP server on loopback that keeps every JSON body it is sent and answers
//! `204 No Content`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A webhook receiver that keeps every JSON body it is sent.
pub fn webhook_receiver() -> (
    SocketAddr,
    Arc<Mutex<Vec<serde_json::Value>>>,
    tokio::runtime::Runtime,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    rt.spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let g = Arc::clone(&g);
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                // Read headers, then exactly content-length bytes of body.
                loop {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if req.len() >= end + 4 + len {
                            let body: serde_json::Value =
                                serde_json::from_slice(&req[end + 4..end + 4 + len]).unwrap();
                            g.lock().unwrap().push(body);
                            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, got, rt)
}
