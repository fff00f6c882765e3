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

/// A private CA, a server certificate for `localhost` it signed, and a client
/// certificate it signed.
struct Pki {
    ca_pem: String,
    server_der: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    server_key: Vec<u8>,
    ca_der: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    client_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["client.local".into()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_der: server.der().clone(),
        server_key: server_key.serialize_der(),
        client_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// An HTTPS server on 127.0.0.1:0 with the PKI's server certificate, asking for
/// a client certificate signed by the CA when `mutual`; answers `secure` to
/// every request. Counts the requests it answered.
async fn https_server(pki: &Pki, mutual: bool) -> (u16, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::RootCertStore;
    use tokio_rustls::rustls::server::WebPkiClientVerifier;

    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone()));
    let certs = vec![pki.server_der.clone()];
    let config = if mutual {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
    } else {
        builder.with_no_client_auth().with_single_cert(certs, key)
    }
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&answered);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, count) = (acceptor.clone(), Arc::clone(&count));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecure")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, answered)
}

async fn query(ctx: &datafusion::prelude::SessionContext, port: u16) -> String {
    let sql = format!(
        "SELECT r['status'] AS status, r['body'] AS body, r['error'] AS error \
         FROM (SELECT http_get('https://localhost:{port}/') AS r)"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_and_client_certificates() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = write(&dir, "ca.pem", &pki.ca_pem);
    let cert = write(&dir, "client.pem", &pki.client_pem);
    let key = write(&dir, "client.key", &pki.client_key_pem);
    let ctx = datafusion::prelude::SessionContext::new();
    datafusion_async_udf::register_all(&ctx).unwrap();

    // a server certificate from a private CA: untrusted until http.ca_file names it
    let (port, answered) = https_server(&pki, false).await;
    let out = query(&ctx, port).await;
    assert!(
        out.contains("certificate") && !out.contains("secure"),
        "{out}"
    );
    ctx.sql(&format!("SET http.ca_file = '{ca}'"))
        .await
        .unwrap();
    let out = query(&ctx, port).await;
    assert!(out.contains("| 200    | secure |"), "{out}");
    assert_eq!(answered.load(Ordering::SeqCst), 1);

    // mutual TLS: refused without a client certificate, answered with one
    let (port, answered) = https_server(&pki, true).await;
    let out = query(&ctx, port).await;
    assert!(!out.contains("secure"), "{out}");
    assert_eq!(answered.load(Ordering::SeqCst), 0);
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
    let out = query(&ctx, port).await;
    assert!(out.contains("| 200    | secure |"), "{out}");
    assert_eq!(answered.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_insecure_accepts_any_certificate_and_says_so() {
    let pki = pki();
    let (port, answered) = https_server(&pki, false).await;
    let ctx = datafusion::prelude::SessionContext::new();
    datafusion_async_udf::register_all(&ctx).unwrap();
    ctx.sql("SET http.tls_insecure = true").await.unwrap();
    let out = query(&ctx, port).await;
    assert!(out.contains("| 200    | secure |"), "{out}");
    assert_eq!(answered.load(Ordering::SeqCst), 1);
    let plan = ctx
        .sql(&format!(
            "EXPLAIN SELECT http_get('https://localhost:{port}/')"
        ))
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
