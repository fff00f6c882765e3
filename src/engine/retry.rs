//! Retries with exponential backoff and full jitter, a hint (such as HTTP's
//! `Retry-After`) overriding the computed delay, and an overall deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use backon::{BackoffBuilder, ExponentialBuilder};

/// How to retry a failed call. Defaults: 3 retries, 100 ms initial delay doubling
/// up to 30 s, no overall deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// Upper bound of the first delay; each further one doubles it.
    pub initial: Duration,
    /// Cap of every delay, hints included.
    pub max: Duration,
    /// Overall time for all attempts and delays of one call; `None` = no limit.
    pub deadline: Option<Duration>,
}

impl RetryPolicy {
    pub const fn new() -> Self {
        Self {
            max_retries: 3,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            deadline: None,
        }
    }

    pub const fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    pub const fn with_initial(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }

    pub const fn with_max(mut self, d: Duration) -> Self {
        self.max = d;
        self
    }

    pub const fn with_deadline(mut self, d: Option<Duration>) -> Self {
        self.deadline = d;
        self
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

/// What the caller makes of an attempt's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Final: success, or a failure that retrying cannot fix.
    Done,
    /// Transient: try again, after `after` if the service said so.
    Retry { after: Option<Duration> },
}

/// The result of the last attempt and how many attempts were made.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempts<T> {
    pub result: T,
    #[allow(clippy::struct_field_names)] // `done.attempts` reads as what it is
    pub attempts: u32,
    /// Why retrying stopped although the last result asked for a retry.
    pub gave_up: Option<GaveUp>,
}

/// Why a retryable result was returned anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// `max_retries` were used.
    Retries,
    /// The next delay would pass the deadline.
    Deadline,
}

/// Runs `attempt(n)` (n = 1, 2, …) until `verdict` says done, the retries are used
/// or the deadline would pass. `attempt` gets the time left before the deadline.
/// Delays are drawn uniformly from `[0, min(max, initial × 2^k)]` (full jitter); a
/// hint replaces the draw, capped at `max`.
pub async fn retry<T, F, Fut>(
    policy: RetryPolicy,
    mut attempt: F,
    verdict: impl Fn(&T) -> Verdict,
) -> Attempts<T>
where
    F: FnMut(u32, Option<Duration>) -> Fut,
    Fut: Future<Output = T>,
{
    // the clock is read only for a deadline, the backoff made only for a
    // retry: most calls need neither
    let start = policy.deadline.map(|_| Instant::now());
    let left = || {
        let (deadline, start) = (policy.deadline?, start?);
        Some(deadline.saturating_sub(start.elapsed()))
    };
    let mut backoff = None;
    let mut n = 1;
    loop {
        let result = attempt(n, left()).await;
        let Verdict::Retry { after } = verdict(&result) else {
            return Attempts {
                result,
                attempts: n,
                gave_up: None,
            };
        };
        let ceiling = backoff
            .get_or_insert_with(|| {
                ExponentialBuilder::default()
                    .with_min_delay(policy.initial)
                    .with_max_delay(policy.max)
                    .with_max_times(policy.max_retries as usize)
                    .build()
            })
            .next();
        let Some(ceiling) = ceiling else {
            return Attempts {
                result,
                attempts: n,
                gave_up: Some(GaveUp::Retries),
            };
        };
        let delay = after
            .unwrap_or_else(|| ceiling.mul_f64(fastrand::f64()))
            .min(policy.max);
        if left().is_some_and(|l| delay >= l) {
            return Attempts {
                result,
                attempts: n,
                gave_up: Some(GaveUp::Deadline),
            };
        }
        // the call's budget slot is free meanwhile
        // boxed: rare, and kept out of every call's future
        Box::pin(super::lend::idle(delay)).await;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing_until(ok_at: u32) -> impl Fn(&u32) -> Verdict {
        move |&n| {
            if n >= ok_at {
                Verdict::Done
            } else {
                Verdict::Retry { after: None }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_done() {
        let out = retry(
            RetryPolicy::new(),
            |n, _| async move { n },
            failing_until(3),
        )
        .await;
        assert_eq!((out.result, out.attempts, out.gave_up), (3, 3, None));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_after_max_retries() {
        let policy = RetryPolicy::new().with_max_retries(2);
        let out = retry(policy, |n, _| async move { n }, failing_until(10)).await;
        assert_eq!((out.attempts, out.gave_up), (3, Some(GaveUp::Retries)));
        let none = retry(
            policy.with_max_retries(0),
            |n, _| async move { n },
            failing_until(10),
        )
        .await;
        assert_eq!(none.attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn delays_are_full_jitter_and_capped() {
        let policy = RetryPolicy::new()
            .with_max_retries(6)
            .with_initial(Duration::from_millis(100))
            .with_max(Duration::from_millis(400));
        let start = tokio::time::Instant::now();
        let out = retry(policy, |n, _| async move { n }, failing_until(7)).await;
        assert_eq!(out.attempts, 7);
        // ceilings 100, 200, 400, 400, 400, 400 ms: the total is at most their sum
        assert!(
            start.elapsed() <= Duration::from_millis(1_900),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hints_are_honoured_and_capped() {
        let policy = RetryPolicy::new().with_max(Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        let out = retry(
            policy,
            |n, _| async move { n },
            |&n| {
                if n < 3 {
                    Verdict::Retry {
                        after: Some(Duration::from_secs(60)),
                    }
                } else {
                    Verdict::Done
                }
            },
        )
        .await;
        assert_eq!(out.attempts, 3);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_stops_retrying() {
        let policy = RetryPolicy::new()
            .with_max_retries(100)
            .with_deadline(Some(Duration::from_secs(3)));
        let out = retry(
            policy,
            |n, left| async move {
                assert!(left.is_some_and(|l| l <= Duration::from_secs(3)));
                n
            },
            |_| Verdict::Retry {
                after: Some(Duration::from_secs(1)),
            },
        )
        .await;
        assert_eq!((out.attempts, out.gave_up), (3, Some(GaveUp::Deadline)));
    }
}
