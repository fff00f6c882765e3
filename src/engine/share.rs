//! Fair shares of the in-flight budget between the queries running at once.
//!
//! Every call holds a [`Slot`] of its session's budget while it runs. Calls
//! belong to a [`Flow`], one per query; when the budget is full, a slot freed by
//! a finishing call goes to the waiting flow that holds the fewest slots per unit
//! of weight (ties: the flow served longest ago), so each of `n` busy queries of
//! equal weight converges to `budget / n` calls in flight. This is weighted
//! max-min fairness over slots, the policy of Hadoop's Fair Scheduler and of
//! deficit round robin with the time a slot is held as the cost. It is
//! work-conserving: a slot is never left free while any flow waits, and a flow
//! alone gets the whole budget. With fairness off, slots go to waiters in
//! arrival order (first come, first served), whatever their flow.
//!
//! Within a flow, the calls of a pipeline's chunk wait in the order the chunk
//! was admitted (see [`held::order`]): the rows of older chunks first, so rows
//! are called about in input order and the reorder window holds few finished
//! rows. Other requests wait in arrival order among them.
//!
//! Waiting is cancellation-safe: a waiter dropped before it is served leaves
//! the queue, and a slot handed to a waiter dropped at that moment is passed on.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{CallStats, held};

/// The calls of one query: what it holds of the budget is weighed against the
/// other flows, and what its calls did is counted in its own [`CallStats`].
#[derive(Debug)]
pub struct Flow {
    id: u64,
    weight: u32,
    stats: Arc<CallStats>,
    /// Identical distinct calls so far, by their fingerprint's first 8 bytes
    /// (see `journal::once`).
    occurrences: Mutex<std::collections::HashMap<u64, u32>>,
}

static NEXT_FLOW: AtomicU64 = AtomicU64::new(1);

impl Flow {
    /// A new flow of `weight` (at least 1).
    pub fn new(weight: u32) -> Arc<Self> {
        Arc::new(Self {
            id: NEXT_FLOW.fetch_add(1, Ordering::Relaxed),
            weight: weight.max(1),
            stats: Arc::new(CallStats::new()),
            occurrences: Mutex::default(),
        })
    }

    /// A number no other flow of this process has.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// How many calls with this fingerprint the query made before this one.
    pub fn occurrence(&self, fingerprint: u64) -> u32 {
        let mut seen = self.occurrences.lock();
        let n = seen.entry(fingerprint).or_default();
        *n += 1;
        *n - 1
    }

    /// What this flow's calls did.
    pub fn stats(&self) -> &Arc<CallStats> {
        &self.stats
    }
}

tokio::task_local! {
    static CURRENT: Arc<Flow>;
}

/// Runs `f` with its calls counted against `flow`.
pub async fn in_flow<F: Future>(flow: Arc<Flow>, f: F) -> F::Output {
    CURRENT.scope(flow, f).await
}

/// The flow calls of this task belong to, if an operator set one.
pub fn current_flow() -> Option<Arc<Flow>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// One flow's place at the budget.
#[derive(Default)]
struct Lane {
    weight: u32,
    held: usize,
    /// Waiters sorted by their place: (order, arrival number). A queue, not
    /// a map: waiters mostly arrive in order (an insert at the back), and an
    /// emptied queue keeps its buffer where a map frees its node every time.
    waiting: VecDeque<((u64, u64), oneshot::Sender<Slot>)>,
    /// When this lane was last served (a counter), for ties.
    served: u64,
}

impl Lane {
    /// Drops waiters that gave up; whether any are left.
    fn has_waiters(&mut self) -> bool {
        while self.waiting.front().is_some_and(|(_, tx)| tx.is_closed()) {
            self.waiting.pop_front();
        }
        !self.waiting.is_empty()
    }
}

#[derive(Default)]
struct State {
    free: usize,
    /// The lanes of the flows that hold or wait for slots: a few (one per
    /// query running), so a list, searched without hashing.
    lanes: Vec<(u64, Lane)>,
    arrivals: u64,
    turns: u64,
}

impl State {
    fn lane(&mut self, flow: u64) -> Option<&mut Lane> {
        self.lanes
            .iter_mut()
            .find_map(|(id, lane)| (*id == flow).then_some(lane))
    }

    /// `flow`'s lane, added when it has none.
    fn lane_or_new(&mut self, flow: &Flow) -> &mut Lane {
        let at = self.lanes.iter().position(|(id, _)| *id == flow.id);
        let at = at.unwrap_or_else(|| {
            let lane = Lane {
                weight: flow.weight,
                ..Lane::default()
            };
            self.lanes.push((flow.id, lane));
            self.lanes.len() - 1
        });
        &mut self.lanes[at].1
    }
}

/// A budget of `limit` slots shared fairly by flows (see the module docs).
pub struct Slots {
    fair: AtomicBool,
    state: Mutex<State>,
    /// Calls made outside any flow share this one.
    unnamed: Arc<Flow>,
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots")
            .field("fair", &self.fair.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A slot of the budget; freed (and handed to the next waiter) when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    flow: u64,
    /// False once the slot went back into the free count by other means.
    armed: bool,
}

impl Slot {
    /// The budget this slot belongs to.
    pub(crate) fn slots(&self) -> &Arc<Slots> {
        &self.slots
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.armed {
            self.slots.release(self.flow);
        }
    }
}

impl Slots {
    /// `limit` slots (at least 1), fair between flows.
    pub fn new(limit: usize) -> Arc<Self> {
        let limit = limit.max(1);
        Arc::new(Self {
            fair: AtomicBool::new(true),
            state: Mutex::new(State {
                free: limit,
                ..State::default()
            }),
            unnamed: Flow::new(1),
        })
    }

    /// Fair shares (true) or first come, first served (false) from now on.
    pub fn set_fair(&self, fair: bool) {
        self.fair.store(fair, Ordering::Relaxed);
    }

    /// Slots free now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.state.lock().free
    }

    /// A slot for a call of `flow` (`None`: calls outside any query's flow,
    /// which share one).
    pub async fn acquire(self: &Arc<Self>, flow: Option<&Flow>) -> Slot {
        self.acquire_for(flow.unwrap_or(&self.unnamed)).await
    }

    /// A slot for a call of `flow`: at once if one is free, else when the
    /// policy hands it one.
    pub async fn acquire_for(self: &Arc<Self>, flow: &Flow) -> Slot {
        let waiting = {
            let mut state = self.state.lock();
            if state.free > 0 {
                state.free -= 1;
                state.lane_or_new(flow).held += 1;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                state.arrivals += 1;
                let place = (held::order(), state.arrivals);
                let waiting = &mut state.lane_or_new(flow).waiting;
                let at = waiting.partition_point(|(p, _)| *p < place);
                waiting.insert(at, (place, tx));
                Some(rx)
            }
        };
        match waiting {
            None => Slot {
                slots: Arc::clone(self),
                flow: flow.id,
                armed: true,
            },
            // the sender lives in the queue until it is served, and serving
            // sends a slot: the channel cannot close without one
            Some(rx) => rx
                .await
                .unwrap_or_else(|_| unreachable!("slot queue dropped")),
        }
    }

    /// `flow` gave a slot back: it goes to the next waiter, or to the free count.
    fn release(self: &Arc<Self>, flow: u64) {
        let mut state = self.state.lock();
        if let Some(lane) = state.lane(flow) {
            lane.held = lane.held.saturating_sub(1);
        }
        let fair = self.fair.load(Ordering::Relaxed);
        loop {
            let Some(next) = next_lane(&mut state.lanes, fair) else {
                state.free += 1;
                break;
            };
            state.turns += 1;
            let turn = state.turns;
            let lane = state.lane(next).expect("picked lane exists");
            let (_, tx) = lane.waiting.pop_front().expect("picked lane waits");
            lane.held += 1;
            lane.served = turn;
            let slot = Slot {
                slots: Arc::clone(self),
                flow: next,
                armed: true,
            };
            match tx.send(slot) {
                Ok(()) => break,
                Err(mut slot) => {
                    // the waiter gave up just now: pass the slot on
                    slot.armed = false;
                    lane.held -= 1;
                }
            }
        }
        state
            .lanes
            .retain(|(_, lane)| lane.held > 0 || !lane.waiting.is_empty());
    }
}

/// The lane to serve next: fewest slots held per unit of weight (ties: served
/// longest ago), or, without fairness, the earliest waiter.
fn next_lane(lanes: &mut [(u64, Lane)], fair: bool) -> Option<u64> {
    let mut best: Option<(u64, &Lane)> = None;
    for (id, lane) in lanes.iter_mut() {
        let id = *id;
        if !lane.has_waiters() {
            continue;
        }
        let better = match best {
            None => true,
            Some((_, b)) if fair => {
                // held/weight < b.held/b.weight, without division
                let (mine, theirs) = (
                    lane.held as u128 * u128::from(b.weight),
                    b.held as u128 * u128::from(lane.weight),
                );
                mine < theirs || (mine == theirs && lane.served < b.served)
            }
            Some((_, b)) => {
                lane.waiting.front().map(|(p, _)| p) < b.waiting.front().map(|(p, _)| p)
            }
        };
        if better {
            best = Some((id, lane));
        }
    }
    best.map(|(id, _)| id)
}

#[cfg(test)]
mod tests;
