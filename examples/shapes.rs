//! The four shapes of typed async column functions, per row and per chunk.
//!
//! ```text
//! cargo run --all-features --example shapes
//! ```

use datafusion::common::Result;
use datafusion::prelude::*;
use datafusion_async_udf::{AsyncFn, ChunkContext, register_all};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct Geo {
    lat: f64,
    lon: f64,
}

#[derive(Clone, Serialize, Deserialize)]
struct Person {
    name: String,
    age: Option<i32>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Scored {
    name: String,
    score: f64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let ctx = SessionContext::new();
    register_all(&ctx)?;

    // scalar -> scalar, one call per row
    AsyncFn::per_row("double", |x: i64| async move { Ok::<_, String>(x * 2) })?.register(&ctx)?;

    // scalar -> struct
    AsyncFn::per_row("geocode", |address: String| async move {
        Ok::<_, String>(Geo {
            lat: address.len() as f64,
            lon: -0.1,
        })
    })?
    .register(&ctx)?;

    // struct -> scalar, one call per chunk of up to async_udf.chunk_size rows
    AsyncFn::per_chunk(
        "age_next_year",
        |people: Vec<Person>, cx: ChunkContext| async move {
            println!("chunk {} has rows {:?}", cx.chunk_index, cx.rows);
            Ok::<_, String>(
                people
                    .iter()
                    .map(|p| p.age.map(|a| a + 1))
                    .collect::<Vec<_>>(),
            )
        },
    )?
    .register(&ctx)?;

    // struct -> struct, with an `error` field for rows that fail
    AsyncFn::per_row("score", |p: Person| async move {
        match p.age {
            Some(age) => Ok(Scored {
                name: p.name,
                score: f64::from(age) / 100.0,
            }),
            None => Err(format!("no age for {}", p.name)),
        }
    })?
    .with_error_field()?
    .register(&ctx)?;

    ctx.sql(
        "SELECT double(2) AS d,
                geocode('1 Main St') AS g,
                age_next_year(named_struct('name', n, 'age', a)) AS next,
                score(named_struct('name', n, 'age', a)) AS s
         FROM (VALUES ('ann', 41), ('bob', NULL)) AS t(n, a)",
    )
    .await?
    .show()
    .await?;
    Ok(())
}
