//! The progress line of `dfasync`: while async calls have been running for more
//! than a second, one line on stderr shows calls done, in flight, errors and calls
//! per second:
//!
//! ```text
//! ⠙ 3,412 calls done · 256 in flight · 2 errors · 1,021 calls/s · 3.3 s
//! ```
//!
//! When a host's adaptive limits hold it below the budget (`http.adaptive`), the
//! line says so: `… · 3.3 s · api.example.com:443 limit 24 latency, 4.5 req/s learned, 3 refused`.
//!
//! It reads the call counters of the statement running in the foreground (its
//! query's [`CallStats`], see [`Progress::follow`]), so it covers every async
//! function of this crate and `map_in_batches` in that statement, and not the
//! jobs running in the background (`\jobs` lists those). It is cleared the
//! moment the last call in flight ends (a hook of the counters runs before the
//! operator emits its last rows, so results are never printed under it), and a new
//! line starts when calls resume more than half a second later.
//!
//! Off with `-q`, or when stdout or stderr is not a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;

use crate::engine::{Adaptive, CallStats, Reason};

/// Calls must have been running this long before the line shows.
const SHOW_AFTER: Duration = Duration::from_secs(1);
/// A pause in calls longer than this starts a new count.
const NEW_PERIOD_AFTER: Duration = Duration::from_millis(500);
/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// Whether `dfasync` shows the progress line.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// Draws `progress` every 100 ms until the task is aborted.
pub fn spawn(progress: Progress) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TICK);
        loop {
            every.tick().await;
            progress.tick(Instant::now());
        }
    })
}

/// The progress line of the foreground statement's calls.
#[derive(Clone)]
pub struct Progress {
    state: Arc<Mutex<State>>,
}

struct State {
    stats: Arc<CallStats>,
    limits: Option<Arc<Adaptive>>,
    target: fn() -> ProgressDrawTarget,
    period: Option<Period>,
    bar: Option<ProgressBar>,
}

/// A stretch of time with calls in flight (pauses under half a second included).
struct Period {
    since: Instant,
    idle_since: Option<Instant>,
    done_before: usize,
    errors_before: usize,
}

impl Progress {
    /// A progress line of `stats`' calls, drawn on the targets `target` makes
    /// (one per line shown).
    pub fn new(calls: &Arc<CallStats>, target: fn() -> ProgressDrawTarget) -> Self {
        let progress = Self {
            state: Arc::new(Mutex::new(State {
                stats: Arc::clone(calls),
                limits: None,
                target,
                period: None,
                bar: None,
            })),
        };
        progress.hook(calls);
        progress
    }

    /// Shows the hosts that `limits` holds below the budget too.
    #[must_use]
    pub fn with_limits(self, limits: Arc<Adaptive>) -> Self {
        self.state.lock().limits = Some(limits);
        self
    }

    /// Shows `stats`' calls from now on (the next statement's), starting a new count.
    pub fn follow(&self, calls: Arc<CallStats>) {
        self.hook(&calls);
        let mut line = self.state.lock();
        line.hide(Instant::now());
        line.period = None;
        line.stats = calls;
    }

    /// Clears the line the moment `stats`' last call in flight ends.
    fn hook(&self, stats: &CallStats) {
        let weak = Arc::downgrade(&self.state);
        stats.on_idle(move || {
            if let Some(state) = weak.upgrade() {
                state.lock().hide(Instant::now());
            }
        });
    }

    /// Updates the line for time `now`.
    pub fn tick(&self, now: Instant) {
        let mut state = self.state.lock();
        let calls = Arc::clone(&state.stats);
        let in_flight = calls.in_flight().now;
        let (done, errors) = (calls.done.value(), calls.errors.value());
        if in_flight == 0 {
            state.hide(now);
            if let Some(p) = &state.period
                && p.idle_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= NEW_PERIOD_AFTER)
            {
                state.period = None;
            }
            return;
        }
        let period = state.period.get_or_insert(Period {
            since: now,
            idle_since: None,
            done_before: done,
            errors_before: errors,
        });
        period.idle_since = None;
        let elapsed = now.saturating_duration_since(period.since);
        if elapsed < SHOW_AFTER {
            return;
        }
        let mut line = line(
            done.saturating_sub(period.done_before),
            in_flight,
            errors.saturating_sub(period.errors_before),
            elapsed,
        );
        if let Some(limits) = &state.limits {
            line.push_str(&held_back(limits));
        }
        let target = state.target;
        let bar = state.bar.get_or_insert_with(|| {
            let style = ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            ProgressBar::with_draw_target(None, target()).with_style(style)
        });
        bar.set_message(line);
        bar.tick();
    }
}

impl State {
    fn hide(&mut self, now: Instant) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some(p) = &mut self.period {
            p.idle_since.get_or_insert(now);
        }
    }
}

/// The text of the line.
fn line(done: usize, in_flight: usize, errors: usize, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    format!(
        "{} calls done · {} in flight · {} errors · {} calls/s · {secs:.1} s",
        HumanCount(done as u64),
        HumanCount(in_flight as u64),
        HumanCount(errors as u64),
        HumanCount(rate.round() as u64),
    )
}

/// The hosts held below the budget by their adaptive limits, for the line.
fn held_back(limits: &Adaptive) -> String {
    let mut out = String::new();
    for r in limits.report() {
        let mut what = Vec::new();
        if r.limit < r.ceiling {
            let why = match r.limited_by {
                Some(w @ Reason::Latency) => format!(" {w}"),
                _ => String::new(),
            };
            what.push(format!("limit {}{why}", r.limit));
        }
        if let Some(rate) = r.rate {
            let why = r.reason.map(|w| format!(" {w}")).unwrap_or_default();
            what.push(format!("{rate:.1} req/s{why}"));
        }
        if r.throttled > 0 {
            what.push(format!("{} refused", r.throttled));
        }
        if !what.is_empty() {
            out.push_str(" · ");
            out.push_str(&r.key);
            out.push(' ');
            out.push_str(&what.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use indicatif::InMemoryTerm;

    use super::*;
    use crate::engine::Signal;
    use crate::engine::metrics::{start_call, within};

    static TERM: OnceLock<InMemoryTerm> = OnceLock::new();

    fn term() -> ProgressDrawTarget {
        let term = TERM.get_or_init(|| InMemoryTerm::new(4, 120)).clone();
        ProgressDrawTarget::term_like(Box::new(term))
    }

    #[test]
    fn line_reads_well() {
        assert_eq!(
            line(12_345, 256, 2, Duration::from_millis(2500)),
            "12,345 calls done · 256 in flight · 2 errors · 4,938 calls/s · 2.5 s"
        );
    }

    #[tokio::test]
    async fn names_the_hosts_held_below_the_budget() {
        let limits = Adaptive::default();
        assert_eq!(held_back(&limits), "");
        let mut slots = Vec::new();
        for _ in 0..4 {
            slots.push(limits.acquire("api:443", 64).await);
        }
        limits.acquire("other:80", 64).await.answered(Signal::Clean);
        // a first refusal holds the host at the 3 calls still in flight
        slots.pop().expect("a slot").answered(Signal::Overloaded);
        assert_eq!(held_back(&limits), " · api:443 limit 3");
    }

    #[tokio::test]
    async fn shows_after_a_second_and_clears_when_calls_end() {
        let stats = Arc::new(CallStats::new());
        let progress = Progress::new(&stats, term);
        let contents = || {
            TERM.get()
                .map(indicatif::InMemoryTerm::contents)
                .unwrap_or_default()
        };
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);

        within(Arc::clone(&stats), async {
            start_call().finish();
            let slow = start_call();
            progress.tick(at(0));
            progress.tick(at(900));
            assert_eq!(contents().trim(), "", "nothing within the first second");
            start_call().finish();
            progress.tick(at(1100));
            let shown = contents();
            assert!(
                shown.contains("1 calls done · 1 in flight · 0 errors"),
                "{shown:?}"
            );
            // the last call ends: the hook clears the line at once, without a tick
            drop(slow);
            assert_eq!(contents().trim(), "", "cleared when idle");
            // calls resume soon after: same count, line back at the next tick
            let again = start_call();
            progress.tick(at(1200));
            assert!(contents().contains("1 calls done"), "{:?}", contents());
            again.finish();
            // a long pause starts a new count that waits its own second
            progress.tick(at(1300));
            progress.tick(at(2000));
            let _third = start_call();
            progress.tick(at(2100));
            assert_eq!(contents().trim(), "", "new period, not shown yet");
            progress.tick(at(3200));
            assert!(contents().contains("0 calls done"), "{:?}", contents());
        })
        .await;
    }
}
