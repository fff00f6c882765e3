//! `secret('NAME')`: an opaque reference to a secret, resolved only when a request
//! is sent, only into a header value, and only for the hosts the secret is scoped
//! to:
//!
//! ```sql
//! SELECT http_get('https://api.thecatapi.com/v1/images/search',
//!                 map(['x-api-key'], [secret('CAT_API_KEY')]))['status']
//! ```
//!
//! The function returns a marker, `***secret:NAME***`, never the value: selecting
//! it shows the marker, and the value never stands in a plan (`EXPLAIN`), a column
//! name, a log or an error. When an HTTP function builds a request, markers in
//! header values (`'Bearer ' || secret('TOKEN')` too) are replaced by the value if
//! the request's host is in the secret's scope; a marker in the URL or the body,
//! or a host outside the scope, gives that row an error and sends nothing. A
//! header that carried a secret is dropped when a redirect leaves the origin.
//!
//! Values come from the session's [`Secrets`] ([`crate::AsyncRuntime::secrets`]),
//! set by the embedding application with a scope ([`Secrets::set`]). Environment
//! variables are read only if the application allows it ([`Secrets::allow_env`]):
//! `dfasync` does; the variable `NAME_HOSTS` then scopes the secret `NAME` (any
//! host when it is not set: the shell's user owns both the SQL and the
//! environment). An application running untrusted SQL should scope every secret
//! and leave the environment off.
//!
//! The function is volatile, so plans show `secret(Utf8("NAME"))` rather than a
//! folded literal. Its argument must be a string literal; a missing secret is a
//! plan error naming it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_datafusion_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use parking_lot::RwLock;

use crate::transport::AllowedHosts;

/// A secret's value and the hosts it may be sent to.
struct Secret {
    value: String,
    hosts: AllowedHosts,
}

/// The secrets of one session, by name.
#[derive(Default)]
pub struct Secrets {
    values: RwLock<HashMap<String, Secret>>,
    env: AtomicBool,
}

/// Marks where a secret goes: `***secret:NAME***`.
const OPEN: &str = "***secret:";
const CLOSE: &str = "***";

/// The marker `secret('NAME')` returns.
pub(crate) fn marker(name: &str) -> String {
    format!("{OPEN}{name}{CLOSE}")
}

/// The name of the first secret marker in `text`, if any.
pub(crate) fn first_marker(text: &str) -> Option<&str> {
    if !text.contains('*') {
        return None;
    }
    let start = text.find(OPEN)? + OPEN.len();
    let len = text[start..].find(CLOSE)?;
    Some(&text[start..start + len])
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<String> = self.values.read().keys().cloned().collect();
        names.sort();
        f.debug_struct("Secrets")
            .field("names", &names)
            .field("env", &self.env.load(Ordering::Relaxed))
            .finish()
    }
}

impl Secrets {
    /// Sets (or replaces) the secret `name`, usable only in requests to `hosts`: a
    /// comma list of host names, `*.domain` for its subdomains, `*` (or an empty
    /// list) for any host — the syntax of `http.allowed_hosts`.
    pub fn set(&self, name: impl Into<String>, value: impl Into<String>, hosts: &str) {
        let secret = Secret {
            value: value.into(),
            hosts: AllowedHosts::parse(hosts),
        };
        self.values.write().insert(name.into(), secret);
    }

    /// Lets `secret('NAME')` fall back to the environment variable `NAME`.
    pub fn allow_env(&self, allow: bool) {
        self.env.store(allow, Ordering::Relaxed);
    }

    /// Whether a secret `name` exists: set, or (if allowed) in the environment.
    pub fn contains(&self, name: &str) -> bool {
        self.values.read().contains_key(name)
            || (self.env.load(Ordering::Relaxed) && std::env::var_os(name).is_some())
    }

    /// The value of `name` for a request to `host`, or why it may not be sent.
    fn value_for(&self, name: &str, host: &str) -> std::result::Result<String, String> {
        let (value, hosts) = if let Some(s) = self.values.read().get(name) {
            (s.value.clone(), s.hosts.clone())
        } else {
            let value = self
                .env
                .load(Ordering::Relaxed)
                .then(|| std::env::var(name).ok())
                .flatten()
                .ok_or_else(|| format!("secret('{name}'): no secret named {name}"))?;
            let hosts = std::env::var(format!("{name}_HOSTS")).unwrap_or_default();
            (value, AllowedHosts::parse(&hosts))
        };
        if hosts.allows(host) {
            Ok(value)
        } else {
            Err(format!(
                "secret('{name}') may not be sent to host '{host}' (not in its scope)"
            ))
        }
    }

    /// `text` (a header value) with every secret marker replaced by its value,
    /// if each may be sent to `host`.
    pub(crate) fn resolve(&self, text: &str, host: &str) -> std::result::Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(name) = first_marker(rest) {
            let at = rest.find(OPEN).unwrap_or_default();
            out.push_str(&rest[..at]);
            out.push_str(&self.value_for(name, host)?);
            rest = &rest[at + OPEN.len() + name.len() + CLOSE.len()..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn require(&self, name: &str) -> Result<()> {
        if self.contains(name) {
            return Ok(());
        }
        Err({
            let env = if self.env.load(Ordering::Relaxed) {
                format!(" or the environment variable {name}")
            } else {
                String::new()
            };
            plan_datafusion_err!(
                "secret('{name}'): no secret named {name}; set it with \
                 AsyncRuntime::secrets().set(\"{name}\", value, hosts){env}"
            )
        })
    }
}

/// The `secret(name)` function over `secrets`.
#[derive(Debug)]
pub struct SecretFunc {
    secrets: Arc<Secrets>,
    signature: Signature,
    doc: Documentation,
}

impl SecretFunc {
    pub fn udf(secrets: Arc<Secrets>) -> ScalarUDF {
        let doc = Documentation::builder(
            crate::documented::SECTION,
            "A reference to the secret NAME, resolved only when a request is sent, only \
             into a header value, and only for the hosts the secret is scoped to; \
             selecting it or putting it into a URL or body gives '***' or an error, \
             never the value",
            "secret(name)",
        )
        .with_sql_example("SELECT http_get(url, MAP {'x-api-key': secret('CAT_API_KEY')}) FROM t")
        .with_argument("name", "VARCHAR literal: the secret's name")
        .build();
        ScalarUDF::new_from_impl(Self {
            secrets,
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Volatile),
            doc,
        })
    }
}

impl PartialEq for SecretFunc {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.secrets, &other.secrets)
    }
}

impl Eq for SecretFunc {}

impl std::hash::Hash for SecretFunc {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.secrets).hash(state);
    }
}

/// The literal name of a call's argument, or a plan error.
fn literal_name(arg: Option<&ScalarValue>) -> Result<&str> {
    match arg {
        Some(ScalarValue::Utf8(Some(name))) if !name.is_empty() => Ok(name),
        _ => plan_err!("secret(name) takes a non-empty string literal, e.g. secret('CAT_API_KEY')"),
    }
}

impl ScalarUDFImpl for SecretFunc {
    fn name(&self) -> &'static str {
        "secret"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let name = literal_name(args.scalar_arguments.first().copied().flatten())?;
        self.secrets.require(name)?;
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, false)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.doc)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = match args.args.first() {
            Some(ColumnarValue::Scalar(value)) => literal_name(Some(value))?,
            _ => literal_name(None)?,
        };
        self.secrets.require(name)?;
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(marker(name)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_resolve_only_for_scoped_hosts() {
        let secrets = Secrets::default();
        secrets.set("TOKEN", "v4lue", "api.example.com, *.cats.io");
        let header = format!("Bearer {}", marker("TOKEN"));
        assert_eq!(first_marker(&header), Some("TOKEN"));
        assert_eq!(
            secrets.resolve(&header, "api.example.com").unwrap(),
            "Bearer v4lue"
        );
        assert_eq!(
            secrets.resolve(&header, "a.cats.io").unwrap(),
            "Bearer v4lue"
        );
        let err = secrets.resolve(&header, "evil.example.org").unwrap_err();
        assert!(
            err.contains("may not be sent to host 'evil.example.org'"),
            "{err}"
        );
        assert!(!err.contains("v4lue"));
        let two = format!("{}:{}", marker("TOKEN"), marker("TOKEN"));
        assert_eq!(
            secrets.resolve(&two, "api.example.com").unwrap(),
            "v4lue:v4lue"
        );
        assert_eq!(secrets.resolve("plain", "x").unwrap(), "plain");
        let missing = secrets.resolve(&marker("NOPE"), "x").unwrap_err();
        assert!(missing.contains("no secret named NOPE"), "{missing}");
    }

    #[test]
    fn set_values_first_environment_only_when_allowed() {
        let secrets = Secrets::default();
        // PATH exists in every test environment
        assert!(!secrets.contains("PATH"), "environment off by default");
        secrets.allow_env(true);
        assert!(secrets.contains("PATH"));
        assert!(
            secrets.resolve(&marker("PATH"), "any.host").is_ok(),
            "no PATH_HOSTS: any host"
        );
        secrets.set("PATH", "mine", "h");
        assert_eq!(secrets.resolve(&marker("PATH"), "h").unwrap(), "mine");
        let err = secrets
            .require("NO_SUCH_SECRET_42")
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret('NO_SUCH_SECRET_42')"), "{err}");
        assert!(
            !format!("{secrets:?}").contains("mine"),
            "Debug hides values"
        );
    }
}
