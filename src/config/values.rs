//! The values of settings that are neither numbers nor strings.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use datafusion::common::config::{ConfigField, Visit};
use datafusion::common::{DataFusionError, Result, config_err};

/// What to do when one row's call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// The error goes into that row's result; other rows are unaffected.
    #[default]
    Row,
    /// The query fails with an error naming the row.
    Fail,
}

impl FromStr for OnError {
    type Err = DataFusionError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "row" => Ok(Self::Row),
            "fail" => Ok(Self::Fail),
            other => config_err!("on_error must be 'row' or 'fail', got '{other}'"),
        }
    }
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Row => "row",
            Self::Fail => "fail",
        })
    }
}

/// A duration written with a unit: `90s`, `30m`, `24h`, `7d` (`ms` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(pub Duration);

impl Default for Ttl {
    fn default() -> Self {
        Self(Duration::from_secs(24 * 3600))
    }
}

impl FromStr for Ttl {
    type Err = DataFusionError;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (n, unit) = t.split_at(split);
        let ms: u64 = match unit.trim() {
            "ms" => 1,
            "s" | "" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => 0,
        };
        match n.parse::<u64>() {
            Ok(n) if ms > 0 && n > 0 => Ok(Self(Duration::from_millis(n.saturating_mul(ms)))),
            _ => config_err!("expected a positive duration such as 90s, 30m, 24h or 7d, got '{s}'"),
        }
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

/// Whether POST and PATCH calls carry an `Idempotency-Key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdempotencyKey {
    /// Every POST and PATCH carries one (unless its headers have one).
    #[default]
    Auto,
    /// None is added.
    Off,
}

impl FromStr for IdempotencyKey {
    type Err = DataFusionError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            other => config_err!("idempotency_key must be 'auto' or 'off', got '{other}'"),
        }
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Off => "off",
        })
    }
}

/// `ConfigField` for a value that parses from and prints as a string.
macro_rules! parsed_field {
    ($($t:ty),*) => {$(
        impl ConfigField for $t {
            fn visit<V: Visit>(&self, v: &mut V, key: &str, description: &'static str) {
                v.some(key, self, description);
            }

            fn set(&mut self, _key: &str, value: &str) -> Result<()> {
                *self = value.parse()?;
                Ok(())
            }

            fn reset(&mut self, _key: &str) -> Result<()> {
                *self = Self::default();
                Ok(())
            }
        }
    )*};
}

parsed_field!(OnError, Ttl, IdempotencyKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print_with_units() {
        for (text, secs) in [
            ("24h", 86_400),
            ("90s", 90),
            ("30m", 1800),
            ("7d", 604_800),
            ("15", 15),
        ] {
            assert_eq!(
                text.parse::<Ttl>().unwrap().0,
                Duration::from_secs(secs),
                "{text}"
            );
        }
        assert_eq!(Ttl::default().to_string(), "1d");
        assert_eq!("90m".parse::<Ttl>().unwrap().to_string(), "90m");
        assert_eq!("1500ms".parse::<Ttl>().unwrap().to_string(), "1500ms");
        for bad in ["", "0h", "h", "3 weeks", "-1s"] {
            let e = bad.parse::<Ttl>().unwrap_err().to_string();
            assert!(e.contains("positive duration"), "{bad}: {e}");
        }
    }
}
