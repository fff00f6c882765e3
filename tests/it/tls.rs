//! Permanent failures are not retried: a server whose certificate is not trusted
//! gets one attempt and a clear error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::util::pretty::pretty_format_batches;
use datafusion_async_udf::mock::{MockApi, MockConfig, TestPki};
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

async fn query(ctx: &datafusion::prelude::SessionContext, api: &MockApi) -> String {
    let sql = format!(
        "SELECT r['status'] AS status, json_get_str(r['body'], 'path') AS path, r['error'] AS error \
         FROM (SELECT http_get('{}') AS r)",
        api.url("/echo")
    );
    pretty_format_batches(&ctx.sql(&sql).await.unwrap().collect().await.unwrap())
        .unwrap()
        .to_string()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn context() -> datafusion::prelude::SessionContext {
    let ctx = datafusion::prelude::SessionContext::new();
    datafusion_async_udf::register_all(&ctx).unwrap();
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_and_client_certificates() {
    let pki = TestPki::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = write(&dir, "ca.pem", &pki.ca_pem);
    let cert = write(&dir, "client.pem", &pki.client_cert_pem);
    let key = write(&dir, "client.key", &pki.client_key_pem);
    let ctx = context();

    // a server certificate from a private CA: untrusted until http.ca_file names it
    let api = MockApi::start_tls(MockConfig::default(), &pki, false)
        .await
        .unwrap();
    let out = query(&ctx, &api).await;
    assert!(
        out.contains("certificate") && !out.contains("/echo"),
        "{out}"
    );
    assert_eq!(api.stats().requests, 0);
    ctx.sql(&format!("SET http.ca_file = '{ca}'"))
        .await
        .unwrap();
    let out = query(&ctx, &api).await;
    assert!(out.contains("| 200    | /echo |"), "{out}");
    assert_eq!(api.stats().requests, 1);
    // HTTP/2, negotiated by ALPN
    let version = ctx
        .sql(&format!(
            "SELECT json_get_str(http_get('{}')['body'], 'version')",
            api.url("/echo")
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let version = pretty_format_batches(&version).unwrap().to_string();
    assert!(version.contains("HTTP/2.0"), "{version}");

    // mutual TLS: refused without a client certificate, answered with one
    let api = MockApi::start_tls(MockConfig::default(), &pki, true)
        .await
        .unwrap();
    let out = query(&ctx, &api).await;
    assert!(!out.contains("/echo"), "{out}");
    assert_eq!(api.stats().requests, 0);
    ctx.sql(&format!("SET http.client_cert = '{cert}'"))
        .await
        .unwrap();
    let out = ctx
        .sql("SELECT http_get('https://localhost:1/')['error']")
        .await;
    let error = out.unwrap().collect().await.unwrap_err().to_string();
    assert!(
        error.contains("http.client_cert and http.client_key must be set together"),
        "{error}"
    );
    ctx.sql(&format!("SET http.client_key = '{key}'"))
        .await
        .unwrap();
    let out = query(&ctx, &api).await;
    assert!(out.contains("| 200    | /echo |"), "{out}");
    assert_eq!(api.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_insecure_accepts_any_certificate_and_says_so() {
    let pki = TestPki::generate().unwrap();
    let api = MockApi::start_tls(MockConfig::default(), &pki, false)
        .await
        .unwrap();
    let ctx = context();
    ctx.sql("SET http.tls_insecure = true").await.unwrap();
    let out = query(&ctx, &api).await;
    assert!(out.contains("| 200    | /echo |"), "{out}");
    assert_eq!(api.stats().requests, 1);
    let plan = ctx
        .sql(&format!("EXPLAIN SELECT http_get('{}')", api.url("/echo")))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let plan = pretty_format_batches(&plan).unwrap().to_string();
    assert!(
        plan.contains("http.tls_insecure=true (server certificates are NOT verified)"),
        "{plan}"
    );
}
