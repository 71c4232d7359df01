//! The gateway's serve loop (in place of `axum::serve`, which has no timeouts): HTTP/1 on
//! hyper with a header-read timeout, and a cap on the connections served at once, so that
//! clients that connect and stall cannot use up the process's descriptors or its memory.
//!
//! A connection waits for a permit *before* it is accepted: past the cap, new clients wait in
//! the kernel's listen backlog (holding no descriptor of ours) until a served connection
//! closes, and a connection that stalls in its headers is closed after the header timeout,
//! which frees its place. Body timeouts are the handlers' (see `body.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http_settings::HttpSettings;
use crate::metrics::GatewayMetrics;

/// Pause after an accept error that is not about one connection (out of descriptors): the
/// loop would otherwise spin on it.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets
/// in-flight requests finish (idle connections close at once) and returns when every
/// connection has closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    http: HttpSettings,
    metrics: GatewayMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(http.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_timeout);
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let tcp = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    on_accept_error(&e).await;
                    continue;
                }
            },
        };
        let conn =
            builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router.clone()));
        let (stop, metrics) = (stop.clone(), metrics.clone());
        connections.spawn(async move {
            let _permit = permit;
            metrics.open_connections.inc();
            tokio::pin!(conn);
            let served = tokio::select! {
                served = conn.as_mut() => served,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            metrics.open_connections.dec();
            if let Err(e) = served {
                if e.is_timeout() {
                    metrics.slow_clients.with_label_values(&["headers"]).inc();
                    tracing::debug!(
                        "connection closed: headers not received within the header timeout"
                    );
                } else {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
        });
    }
    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Errors about one connection (it was reset before we took it) are nothing; anything else
/// (out of descriptors) is logged and paused on.
async fn on_accept_error(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}
