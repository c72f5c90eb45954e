//! Health and readiness over HTTP for Kubernetes probes: `GET /healthz` answers 200 while the
//! process runs; `GET /readyz` answers 200 only while the service is connected to its broker and
//! accepting work (503 before, during reconnects and while shutting down).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

/// Whether the service accepts work; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Sets the flag.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Reads the flag.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Binds `addr` and serves the probes until `shutdown`; returns the bound address at once.
pub async fn spawn_health_server(
    addr: SocketAddr,
    ready: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.get();
                async move {
                    if ready {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        );
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "health server stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn status_line(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.expect("read");
        buf.lines().next().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn readiness_follows_the_flag() {
        let ready = Readiness::default();
        let stop = CancellationToken::new();
        let addr = spawn_health_server(([127, 0, 0, 1], 0).into(), ready.clone(), stop.clone())
            .await
            .expect("bind");
        assert!(status_line(addr, "/healthz").await.contains("200"));
        assert!(status_line(addr, "/readyz").await.contains("503"));
        ready.set(true);
        assert!(status_line(addr, "/readyz").await.contains("200"));
        stop.cancel();
    }
}
