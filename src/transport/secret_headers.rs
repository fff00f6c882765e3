//! The one list of header names whose values are secret: used by redaction in
//! plans and errors, and by redirects (which drop them when the origin changes).

/// Header names whose values are always secret.
pub const BUILT_IN: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// The built-in secret header names plus those of `http.secret_headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHeaders {
    names: Vec<String>,
}

impl Default for SecretHeaders {
    fn default() -> Self {
        Self::new("")
    }
}

impl SecretHeaders {
    /// The built-in names and `extra`, a comma list (`http.secret_headers`).
    pub fn new(extra: &str) -> Self {
        let names = BUILT_IN
            .iter()
            .map(|s| (*s).to_string())
            .chain(
                extra
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty()),
            )
            .collect();
        Self { names }
    }

    /// Whether `header`'s value is secret (names compare case-insensitively).
    pub fn is_secret(&self, header: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(header))
    }

    /// Every secret name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_and_extras() {
        let s = SecretHeaders::new(" X-Tenant-Token ,, x-signature");
        for name in [
            "Authorization",
            "cookie",
            "X-API-KEY",
            "proxy-authorization",
            "x-tenant-token",
            "X-Signature",
        ] {
            assert!(s.is_secret(name), "{name}");
        }
        assert!(!s.is_secret("accept"));
        assert_eq!(s.names().count(), 6);
    }
}
