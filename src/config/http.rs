//! The `http.` namespace.

use std::any::Any;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigField, ExtensionOptions};
use datafusion::common::{Result, config_datafusion_err, config_err};

use super::{AsyncUdfConfig, Entries, IdempotencyKey, OnError, retry_policy};
use crate::engine::RetryPolicy;

namespace! {
    /// Settings of the HTTP functions (`http.*`).
    HttpConfig = "http" {
        /// Time limit of one request in ms, from connecting until the whole body is
        /// read (0 = no limit).
        timeout_ms: u64 = 30_000,
        /// What a failed row does: 'row' puts the error into the row's result,
        /// 'fail' fails the query with an error naming the row and URL. Unset:
        /// async_udf.on_error.
        on_error: Option<OnError> = None,
        /// Largest response body read, in bytes; a longer body is cut off and the
        /// row gets an error.
        max_body_bytes: u64 = 10 * 1024 * 1024,
        /// Retries of a transient failure (429, 502, 503, 504, connect error,
        /// timeout, broken connection); other 4xx are never retried. Unset:
        /// async_udf.max_retries.
        max_retries: Option<u32> = None,
        /// Upper bound of the first backoff delay in ms (full jitter, doubling).
        /// Unset: async_udf.retry_initial_ms.
        retry_initial_ms: Option<u64> = None,
        /// Cap of every backoff delay in ms, Retry-After included. Unset:
        /// async_udf.retry_max_ms.
        retry_max_ms: Option<u64> = None,
        /// Retry requests whose method is not idempotent (POST, PATCH, other
        /// methods) too; GET, HEAD, PUT, DELETE and OPTIONS are always retried.
        /// Off by default: a POST that timed out may have been applied, and
        /// sending it again may apply it twice.
        retry_non_idempotent: bool = false,
        /// The former name of retry_non_idempotent (either one turns it on).
        retry_post: bool = false,
        /// Time limit of one row in ms, all attempts and delays included (0 = none).
        total_timeout_ms: u64 = 0,
        /// Requests per second per target host, shared by all queries of the
        /// session (0 = unlimited; fractions allowed: 120/min is 2.0); per
        /// executor process on a Ballista cluster.
        requests_per_second: f64 = 0.0,
        /// Adapt each host's calls in flight and send rate to what it answers:
        /// 502/503/504 and refused connections cut its limit to 0.9 × its calls
        /// in flight (once per round trip), clean answers grow it back by one per
        /// round trip; advertised quotas, a rate learned from 429s and rising
        /// latency pace and limit it (the three settings below). Within
        /// async_udf.max_in_flight and http.requests_per_second (hard caps).
        /// false: fixed limits only.
        adaptive: bool = true,
        /// Pace each host by the quotas its answers advertise (RateLimit and
        /// RateLimit-Policy, RateLimit-Limit/-Remaining/-Reset, x-ratelimit-*,
        /// anthropic-ratelimit-*): what is left lasts until the reset.
        /// false: the headers are ignored.
        rate_limit_headers: bool = true,
        /// Learn a host's rate from its 429s when it advertises none: paced at
        /// 0.97 of what it accepted, probed 5 % higher after 30 s without
        /// refusals. false: each 429 only waits its Retry-After.
        learn_rate: bool = true,
        /// Limit a host's calls in flight when its latency rises with them (it
        /// queues): its median latency is kept near 1.25 × its unloaded one.
        /// false: only refusals limit the calls in flight.
        latency_limit: bool = true,
        /// Hosts that may be called, comma-separated; '*.example.com' matches
        /// subdomains; empty = all. Checked before connecting and after redirects.
        allowed_hosts: String = String::new(),
        /// Redirects followed per request.
        max_redirects: u32 = 10,
        /// Time limit for opening a connection (TCP and TLS) in ms.
        connect_timeout_ms: u64 = 10_000,
        /// Send Accept-Encoding and decode gzip, deflate, brotli and zstd answers
        /// (max_body_bytes applies to the decoded size).
        compression: bool = true,
        /// Proxy for every request, e.g. 'http://proxy:3128'; empty: the
        /// HTTP_PROXY / HTTPS_PROXY / ALL_PROXY environment variables. NO_PROXY is
        /// honoured either way.
        proxy: String = String::new(),
        /// PEM file of CA certificates to trust besides the built-in roots.
        ca_file: String = String::new(),
        /// PEM file of the client certificate for mutual TLS (with client_key).
        client_cert: String = String::new(),
        /// PEM file of the client certificate's private key (with client_cert).
        client_key: String = String::new(),
        /// Accept any server certificate, expired, self-signed or for another
        /// host. For development only: it disables the protection TLS gives.
        tls_insecure: bool = false,
        /// The User-Agent header (empty: datafusion-async-udf/VERSION).
        user_agent: String = String::new(),
        /// More header names whose values are secret (comma-separated), besides
        /// authorization, proxy-authorization, cookie and x-api-key: never shown in
        /// errors, plans or logs.
        secret_headers: String = String::new(),
        /// 'auto': every POST and PATCH carries an Idempotency-Key header
        /// derived from its journal key (the same on every retry, rerun and
        /// executor; a key in the call's own headers wins); 'off': none.
        idempotency_key: IdempotencyKey = IdempotencyKey::Auto,
    }
}

impl HttpConfig {
    /// The retry policy of HTTP requests: the `http.` keys that are set, the
    /// `async_udf.` ones for the others.
    pub(crate) fn retry_policy(&self, engine: &AsyncUdfConfig) -> RetryPolicy {
        retry_policy(
            self.max_retries.unwrap_or(engine.max_retries),
            self.retry_initial_ms.unwrap_or(engine.retry_initial_ms),
            self.retry_max_ms.unwrap_or(engine.retry_max_ms),
        )
    }

    /// What a failed HTTP row does: `http.on_error` if set, else `async_udf.on_error`.
    pub(crate) fn row_errors(&self, engine: &AsyncUdfConfig) -> OnError {
        self.on_error.unwrap_or(engine.on_error)
    }
}
