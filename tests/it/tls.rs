//! Permanent failures are not retried: a server whose certificate is not trusted
//! gets one attempt and a clear error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::util::pretty::pretty_format_batches;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A TLS listener on 127.0.0.1:0 with a self-signed certificate for `localhost`;
/// counts the connections it accepts.
async fn untrusted_server() -> (u16, Arc<AtomicUsize>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(stream).await;
            });
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn an_untrusted_certificate_is_one_attempt_and_a_clear_error() {
    let (port, accepted) = untrusted_server().await;
    let ctx = datafusion::prelude::SessionContext::new();
    datafusion_async_udf::register_all(&ctx).unwrap();
    ctx.sql("SET http.retry_initial_ms = 1").await.unwrap();
    let sql = format!(
        "SELECT r['attempts'] AS attempts, r['error'] AS error \
         FROM (SELECT http_get('https://localhost:{port}/') AS r)"
    );
    let out = pretty_format_batches(&ctx.sql(&sql).await.unwrap().collect().await.unwrap())
        .unwrap()
        .to_string();
    assert!(out.contains("certificate"), "{out}");
    assert!(out.contains("| 1        |"), "one attempt:\n{out}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection:\n{out}");
}
