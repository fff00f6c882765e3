//! `secret('NAME')`: a secret's value, looked up when the query runs, so the value
//! itself never stands in the SQL text, the logical or physical plan (`EXPLAIN`),
//! column names or logs — only its name does:
//!
//! ```sql
//! SELECT http_get('https://api.thecatapi.com/v1/images/search',
//!                 map(['x-api-key'], [secret('CAT_API_KEY')]))['status']
//! ```
//!
//! Values come from the session's [`Secrets`] ([`crate::AsyncRuntime::secrets`]),
//! filled by the embedding application. Environment variables are read only if the
//! application allows it ([`Secrets::allow_env`]): `dfasync` does, an application
//! running untrusted SQL should not (any variable could be sent anywhere).
//!
//! The function is volatile so that DataFusion never folds it into a literal at
//! plan time (which would print the value in `EXPLAIN`). Its argument must be a
//! string literal; a missing secret is a plan error naming it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_datafusion_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use parking_lot::RwLock;

/// The secrets of one session, by name.
#[derive(Default)]
pub struct Secrets {
    values: RwLock<HashMap<String, String>>,
    env: AtomicBool,
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
    /// Sets (or replaces) the secret `name`.
    pub fn set(&self, name: impl Into<String>, value: impl Into<String>) {
        self.values.write().insert(name.into(), value.into());
    }

    /// Lets `secret('NAME')` fall back to the environment variable `NAME`.
    pub fn allow_env(&self, allow: bool) {
        self.env.store(allow, Ordering::Relaxed);
    }

    /// The value of `name`: set ones first, then (if allowed) the environment.
    pub fn get(&self, name: &str) -> Option<String> {
        self.values.read().get(name).cloned().or_else(|| {
            self.env
                .load(Ordering::Relaxed)
                .then(|| std::env::var(name).ok())
                .flatten()
        })
    }

    fn require(&self, name: &str) -> Result<String> {
        self.get(name).ok_or_else(|| {
            let env = if self.env.load(Ordering::Relaxed) {
                format!(" or the environment variable {name}")
            } else {
                String::new()
            };
            plan_datafusion_err!(
                "secret('{name}'): no secret named {name}; set it with \
                 AsyncRuntime::secrets().set(\"{name}\", …){env}"
            )
        })
    }
}

/// The `secret(name)` function over `secrets`.
#[derive(Debug)]
pub struct SecretFunc {
    secrets: Arc<Secrets>,
    signature: Signature,
}

impl SecretFunc {
    pub fn udf(secrets: Arc<Secrets>) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            secrets,
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Volatile),
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
    fn name(&self) -> &str {
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

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = match args.args.first() {
            Some(ColumnarValue::Scalar(value)) => literal_name(Some(value))?,
            _ => literal_name(None)?,
        };
        let value = self.secrets.require(name)?;
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(value))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_first_environment_only_when_allowed() {
        let secrets = Secrets::default();
        // PATH exists in every test environment
        assert_eq!(secrets.get("PATH"), None, "environment off by default");
        secrets.allow_env(true);
        assert!(secrets.get("PATH").is_some());
        secrets.set("PATH", "mine");
        assert_eq!(secrets.get("PATH").as_deref(), Some("mine"));
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
