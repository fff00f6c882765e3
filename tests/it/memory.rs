//! Memory bounded in bytes: the pipelined operator and map_in_batches reserve what
//! their window holds in DataFusion's memory pool, stop admitting at
//! `async_udf.window_bytes` or when the pool is full, and a chunk that cannot fit
//! at all fails with the pool's error naming the operator.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::Result;
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryPool, MemoryReservation, UnboundedMemoryPool,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use common::{mock, run};

/// A pool that remembers the most ever reserved at once.
#[derive(Debug)]
struct PeakPool<P> {
    inner: P,
    peak: AtomicUsize,
}

impl<P: MemoryPool> PeakPool<P> {
    fn new(inner: P) -> Self {
        Self {
            inner,
            peak: AtomicUsize::new(0),
        }
    }

    fn note(&self) {
        self.peak.fetch_max(self.inner.reserved(), Ordering::SeqCst);
    }
}

impl<P> std::fmt::Display for PeakPool<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeakPool")
    }
}

impl<P: MemoryPool> MemoryPool for PeakPool<P> {
    fn name(&self) -> &'static str {
        "peak"
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.note();
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.inner.try_grow(reservation, additional)?;
        self.note();
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }
}

fn context_with_pool(pool: Arc<dyn MemoryPool>) -> SessionContext {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(pool)
        .build_arc()
        .unwrap();
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
    datafusion_async_udf::register_all(&ctx).unwrap();
    ctx
}

const BODY: usize = 100_000;

/// 400 answers of 100 kB through 8 slots: what the window reserves stays near
/// window_bytes + the answers in flight, far below rows × body (the row window
/// alone would allow 256 rows = 25.6 MB).
#[tokio::test]
async fn the_window_is_bounded_in_bytes() {
    let api = mock(0).await;
    let pool = Arc::new(PeakPool::new(UnboundedMemoryPool::default()));
    let ctx = context_with_pool(Arc::clone(&pool) as _);
    for sql in [
        "SET async_udf.max_in_flight = 8",
        "SET async_udf.chunk_size = 4",
        "SET async_udf.window_bytes = 1000000",
    ] {
        run(&ctx, sql).await.unwrap();
    }
    let sql = format!(
        "SELECT count(*) AS n, sum(length(r['body'])) AS bytes FROM \
         (SELECT http_get('{}?n=' || value) AS r FROM generate_series(1, 400))",
        api.url(&format!("/bytes/{BODY}"))
    );
    let out = arrow::util::pretty::pretty_format_batches(&run(&ctx, &sql).await.unwrap())
        .unwrap()
        .to_string();
    assert!(out.contains("| 400 | 40000000 |"), "{out}");
    let peak = pool.peak.load(Ordering::SeqCst);
    // window (1 MB) + 8 answers in flight + one chunk's arrays (capacity rounding)
    let bound = 1_000_000 + 8 * BODY + 4 * 2 * BODY + 200_000;
    assert!(peak > 0, "the operator reserves what it holds");
    assert!(peak <= bound, "peak reservation {peak} over {bound}");
    assert_eq!(pool.reserved(), 0, "everything released at the end");
}

/// A pool too small for even one answer: the pool's resources-exhausted error,
/// naming the operator and partition.
#[tokio::test]
async fn a_chunk_that_cannot_fit_fails_naming_the_operator() {
    let api = mock(0).await;
    let ctx = context_with_pool(Arc::new(GreedyMemoryPool::new(BODY / 2)));
    run(&ctx, "SET async_udf.chunk_size = 1").await.unwrap();
    let sql = format!(
        "SELECT length(http_get('{}')['body']) FROM generate_series(1, 3)",
        api.url(&format!("/bytes/{BODY}"))
    );
    let err = run(&ctx, &sql).await.unwrap_err().to_string();
    assert!(err.contains("Resources exhausted"), "{err}");
    assert!(err.contains("AsyncPipelineExec[0]"), "{err}");
}

/// Output leaves in batches of at most `batch_size` rows, also when a
/// map_in_batches handler returns bigger ones.
#[tokio::test]
async fn output_batches_are_at_most_batch_size() {
    let ctx = common::context_with(SessionConfig::new().with_batch_size(16));
    run(&ctx, "SET async_udf.chunk_size = 100").await.unwrap();
    let batches = run(
        &ctx,
        "SELECT * FROM map_in_batches('post_json', (SELECT value FROM generate_series(1, 250)), 'http://127.0.0.1:1/')",
    )
    .await
    .unwrap();
    assert_eq!(
        batches
            .iter()
            .map(arrow::array::RecordBatch::num_rows)
            .sum::<usize>(),
        250
    );
    assert!(
        batches.iter().all(|b| b.num_rows() <= 16),
        "{:?}",
        batches
            .iter()
            .map(arrow::array::RecordBatch::num_rows)
            .collect::<Vec<_>>()
    );
}
