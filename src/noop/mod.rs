//! The noop sink: runs the whole query, counts the rows, writes nothing.
//!
//! Three ways in, one sink ([`NoopSink`]):
//! * `COPY (query) TO 'anything' STORED AS NOOP` returns the row count;
//! * `CREATE EXTERNAL TABLE t (...) STORED AS NOOP LOCATION 'noop://'`, then
//!   `INSERT INTO t SELECT …` returns the row count (reading `t` gives no rows);
//! * [`DataFrameNoopExt::write_noop`] on a DataFrame returns the row count.
//!
//! Every partition of the input is consumed (DataFusion merges them into the sink).

mod dataframe;
mod format;
mod sink;
mod table;

pub use dataframe::DataFrameNoopExt;
pub use format::NoopFormatFactory;
pub use sink::NoopSink;
#[cfg(feature = "ballista")]
pub use table::NoopTable;
pub use table::NoopTableFactory;

/// The name used after `STORED AS`.
pub const FORMAT_NAME: &str = "noop";
