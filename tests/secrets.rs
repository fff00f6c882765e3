//! `secret('NAME')`: the value reaches the server but never the plan, the column
//! name or an error.

mod common;

use arrow::util::pretty::pretty_format_batches;
use common::{context, mock, run};

const VALUE: &str = "s3cr3t-Tok3n-9f2c";

#[tokio::test]
async fn the_value_is_sent_but_never_shown() {
    let api = mock(0).await;
    let ctx = context();
    datafusion_async_udf::AsyncRuntime::of(&ctx)
        .unwrap()
        .secrets()
        .set("TEST_TOKEN", format!("Bearer {VALUE}"));
    let call = format!(
        "http_get('{}', map(['authorization'], [secret('TEST_TOKEN')]))",
        api.url("/echo")
    );
    // the server got the value
    let sql = format!("SELECT json_get_str({call}['body'], 'headers', 'authorization') AS a");
    let out = pretty_format_batches(&run(&ctx, &sql).await.unwrap())
        .unwrap()
        .to_string();
    assert!(out.contains(&format!("Bearer {VALUE}")), "{out}");

    // plans (logical, optimized, physical, verbose) and the default column name do not
    let unaliased = format!("SELECT {call}['status']");
    for explain in ["EXPLAIN", "EXPLAIN VERBOSE", "EXPLAIN ANALYZE"] {
        let text =
            pretty_format_batches(&run(&ctx, &format!("{explain} {unaliased}")).await.unwrap())
                .unwrap()
                .to_string();
        assert!(
            text.contains("secret(Utf8(\"TEST_TOKEN\"))") || text.contains("secret(TEST_TOKEN)"),
            "{text}"
        );
        assert!(!text.contains(VALUE), "{explain} shows the secret:\n{text}");
    }
    let batches = run(&ctx, &unaliased).await.unwrap();
    let name = batches[0].schema().field(0).name().clone();
    assert!(!name.contains(VALUE), "{name}");
    assert!(name.contains("secret"), "{name}");

    // an error of the call names the URL, not the header value
    let failing = format!(
        "SET http.on_error = 'fail'; SELECT http_get('{}', map(['authorization'], [secret('TEST_TOKEN')]))",
        api.url("/status/404")
    );
    for statement in failing.split("; ") {
        if let Err(e) = run(&ctx, statement).await {
            assert!(!e.to_string().contains(VALUE), "{e}");
        }
    }
}

#[tokio::test]
async fn bad_names_are_plan_errors() {
    let ctx = context();
    let err = |sql: &str| {
        let ctx = ctx.clone();
        let sql = sql.to_string();
        async move { ctx.sql(&sql).await.unwrap_err().to_string() }
    };
    let missing = err("SELECT secret('NOT_SET_ANYWHERE')").await;
    assert!(
        missing.contains("secret('NOT_SET_ANYWHERE'): no secret named"),
        "{missing}"
    );
    let column = err("SELECT secret(name) FROM (VALUES ('A')) t(name)").await;
    assert!(
        column.contains("secret(name) takes a non-empty string literal"),
        "{column}"
    );
    let empty = err("SELECT secret('')").await;
    assert!(empty.contains("string literal"), "{empty}");
    // the environment is not read unless the application allows it
    let env = err("SELECT secret('PATH')").await;
    assert!(env.contains("no secret named PATH"), "{env}");
}
