//! The `/metrics` endpoint, in Prometheus' text format.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

use super::Watcher;

/// Answers scrapes on `listener` until the process ends.
pub async fn serve(listener: TcpListener, watcher: Arc<Watcher>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let watcher = watcher.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let watcher = watcher.clone();
                async move { Ok::<_, Infallible>(respond(&req, &watcher).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}

async fn respond(req: &Request<hyper::body::Incoming>, watcher: &Watcher) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, CONTENT_TYPE, watcher.scrape().await),
        "/" => (
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "notif-infra monitor: the metrics are at /metrics\n".to_string(),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found\n".to_string()),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}
