//! `df.map_in_batches("handler", args)`.

use async_trait::async_trait;
use datafusion::common::{Result, ScalarValue};
use datafusion::prelude::DataFrame;

use super::{Handlers, relation};

/// Adds [`map_in_batches`](DataFrameMapExt::map_in_batches) to [`DataFrame`].
#[async_trait]
pub trait DataFrameMapExt: Sized {
    /// This DataFrame run through the handler registered as `handler` (with
    /// `args`, as after the input in SQL). Lazy like every DataFrame method.
    fn map_in_batches(self, handler: &str, args: Vec<ScalarValue>) -> Result<DataFrame>;
}

impl DataFrameMapExt for DataFrame {
    fn map_in_batches(self, handler: &str, args: Vec<ScalarValue>) -> Result<DataFrame> {
        let (state, plan) = self.into_parts();
        let handlers = Handlers::of(state.config())?;
        let plan = relation(plan, handler, args, &handlers)?;
        Ok(DataFrame::new(state, plan))
    }
}
