//! The HTTP endpoint: `/metrics` in the Prometheus text format and `/health`, served by
//! tiny_http on threads of its own so that a scrape never waits for (or slows) a role.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use prometheus_client::registry::Registry;

use super::MetricsError;

/// A bound, serving endpoint; dropping it stops serving.
pub(crate) struct MetricsEndpoint {
    server: Arc<tiny_http::Server>,
    /// The address actually bound (port 0 becomes a real port).
    address: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

/// Binds `address` now, so that a busy port is an error before anything else starts.
pub(crate) fn bind(address: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(address).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            MetricsError::AddressInUse { address }
        } else {
            MetricsError::Bind { address, source }
        }
    })
}

impl MetricsEndpoint {
    /// Serves `registry` on `listener` until dropped.
    pub(crate) fn serve(
        listener: TcpListener,
        registry: Arc<Registry>,
    ) -> Result<MetricsEndpoint, MetricsError> {
        let address = listener
            .local_addr()
            .map_err(|source| MetricsError::Serve {
                reason: source.to_string(),
            })?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map(Arc::new)
            .map_err(|e| MetricsError::Serve {
                reason: e.to_string(),
            })?;
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                // Blocks in accept between scrapes: no CPU while idle. `unblock` ends it.
                for request in serving.incoming_requests() {
                    answer(request, &registry);
                }
            })
            .map_err(|source| MetricsError::Serve {
                reason: source.to_string(),
            })?;
        Ok(MetricsEndpoint {
            server,
            address,
            thread: Some(thread),
        })
    }

    /// The address it serves on.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The Content-Type of the Prometheus text format, version 0.0.4.
const TEXT_FORMAT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

fn answer(request: tiny_http::Request, registry: &Registry) {
    let path = request.url().split('?').next().unwrap_or_default();
    let response = match (request.method(), path) {
        (tiny_http::Method::Get, "/metrics") => {
            let mut body = String::with_capacity(16 * 1024);
            match prometheus_client::encoding::prometheus_text::encode(&mut body, registry) {
                Ok(()) => text(200, body, TEXT_FORMAT),
                Err(_) => text(500, "cannot encode the metrics\n".into(), PLAIN),
            }
        }
        (tiny_http::Method::Get, "/health") => text(200, "ok\n".into(), PLAIN),
        (tiny_http::Method::Get, _) => text(
            404,
            "not found: orderflow serves /metrics and /health\n".into(),
            PLAIN,
        ),
        _ => text(405, "only GET is served\n".into(), PLAIN),
    };
    // The scraper may have gone away; nothing to do about it here.
    let _ = request.respond(response);
}

const PLAIN: &str = "text/plain; charset=utf-8";

fn text(
    status: u16,
    body: String,
    content_type: &str,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
        .expect("a static, valid header");
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header)
}
