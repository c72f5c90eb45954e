//! Graceful shutdown: SIGTERM (Kubernetes) or Ctrl-C cancels one token that every part of a
//! service watches. Workers stop taking deliveries, finish and ack what they hold, close the
//! broker connection; `main` then flushes telemetry.

use tokio_util::sync::CancellationToken;

/// Waits for SIGTERM or Ctrl-C.
pub async fn signalled() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A token cancelled on the first signal.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        signalled().await;
        tracing::info!("shutdown requested: finishing in-flight work");
        t.cancel();
    });
    token
}
