//! How a user function says that trying again may help.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use crate::engine::Verdict;

/// An error a typed function can return to have its call retried.
///
/// Return `Err(CallError::transient(…))` for failures another attempt may fix (a
/// timeout, a 503, a dropped connection), optionally with
/// [`retry_after`](CallError::retry_after) when the service said how long to
/// wait. The call is then retried with exponential backoff and full jitter, up to
/// `async_udf.max_retries` times. [`CallError::permanent`] and every other error
/// type (`String`, `anyhow::Error`, …) are final: the row fails at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Worth another attempt, after `retry_after` if set.
    Transient {
        /// What went wrong.
        message: String,
        /// How long the service asked to wait before the next attempt.
        retry_after: Option<Duration>,
    },
    /// Final.
    Permanent(String),
}

impl CallError {
    /// A failure another attempt may fix.
    pub fn transient(message: impl fmt::Display) -> Self {
        Self::Transient {
            message: message.to_string(),
            retry_after: None,
        }
    }

    /// A failure no attempt will fix: the row fails at once.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self::Permanent(message.to_string())
    }

    /// A transient error to retry after `delay` (capped by
    /// `async_udf.retry_max_ms`); a permanent error stays as it is.
    pub fn retry_after(self, delay: Duration) -> Self {
        match self {
            Self::Transient { message, .. } => Self::Transient {
                message,
                retry_after: Some(delay),
            },
            permanent @ Self::Permanent(_) => permanent,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient { message, .. } | Self::Permanent(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CallError {}

/// Whether a call's result is worth another attempt: only a transient
/// [`CallError`] is.
pub(crate) fn verdict<O, E: 'static>(result: &Result<O, E>) -> Verdict {
    let Err(e) = result else {
        return Verdict::Done;
    };
    match (e as &dyn Any).downcast_ref::<CallError>() {
        Some(CallError::Transient { retry_after, .. }) => Verdict::Retry {
            after: *retry_after,
        },
        _ => Verdict::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_call_errors_retry() {
        let after = Duration::from_secs(2);
        let t: Result<(), _> = Err(CallError::transient("503").retry_after(after));
        assert_eq!(verdict(&t), Verdict::Retry { after: Some(after) });
        let p: Result<(), _> = Err(CallError::permanent("404").retry_after(after));
        assert_eq!(verdict(&p), Verdict::Done);
        let s: Result<(), String> = Err("boom".into());
        assert_eq!(verdict(&s), Verdict::Done);
        assert_eq!(verdict(&Ok::<_, CallError>(1)), Verdict::Done);
    }
}
