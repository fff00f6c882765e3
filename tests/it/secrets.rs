//! `secret('NAME')`: an opaque reference. The value reaches a scoped host in a
//! header, and nothing else: not a plan, a column name, a selected value, an
//! error, a URL, a body, another host, or a redirect to another origin.

use crate::common;

use arrow::util::pretty::pretty_format_batches;
use common::{context, mock, run};
use datafusion::prelude::SessionContext;
use datafusion_async_udf::mock::MockApi;

const VALUE: &str = "s3cr3t-Tok3n-9f2c";

async fn text(ctx: &SessionContext, sql: &str) -> String {
    let batches = run(ctx, sql).await.unwrap_or_else(|e| panic!("{sql}\n{e}"));
    pretty_format_batches(&batches).unwrap().to_string()
}

/// A context whose secret TEST_TOKEN may go to 127.0.0.1 only.
fn scoped() -> SessionContext {
    let ctx = context();
    datafusion_async_udf::AsyncRuntime::of(&ctx)
        .unwrap()
        .secrets()
        .set("TEST_TOKEN", VALUE, "127.0.0.1");
    ctx
}

fn echo_header(api: &MockApi, url_path: &str, header: &str, value_sql: &str) -> String {
    format!(
        "SELECT json_get_str(r['body'], 'headers', '{header}') AS got, r['error'] AS error \
         FROM (SELECT http_get('{}', map(['{header}'], [{value_sql}])) AS r)",
        api.url(url_path)
    )
}

#[tokio::test]
async fn the_value_reaches_a_scoped_host_in_a_header() {
    let api = mock(0).await;
    let ctx = scoped();
    let out = text(
        &ctx,
        &echo_header(
            &api,
            "/echo",
            "authorization",
            "'Bearer ' || secret('TEST_TOKEN')",
        ),
    )
    .await;
    assert!(out.contains(&format!("Bearer {VALUE}")), "{out}");
}

#[tokio::test]
async fn plans_names_and_selected_values_show_no_value() {
    let api = mock(0).await;
    let ctx = scoped();
    let call = format!(
        "http_get('{}', map(['authorization'], [secret('TEST_TOKEN')]))",
        api.url("/echo")
    );
    let unaliased = format!("SELECT {call}['status']");
    for explain in ["EXPLAIN", "EXPLAIN VERBOSE", "EXPLAIN ANALYZE"] {
        let plan = text(&ctx, &format!("{explain} {unaliased}")).await;
        assert!(
            plan.contains("secret(Utf8(\"TEST_TOKEN\"))") || plan.contains("secret(TEST_TOKEN)"),
            "{plan}"
        );
        assert!(!plan.contains(VALUE), "{explain} shows the secret:\n{plan}");
    }
    let batches = run(&ctx, &unaliased).await.unwrap();
    let name = batches[0].schema().field(0).name().clone();
    assert!(!name.contains(VALUE) && name.contains("secret"), "{name}");
    // selecting it shows a marker, never the value
    let selected = text(
        &ctx,
        "SELECT secret('TEST_TOKEN') AS s, 'x' || secret('TEST_TOKEN') AS t",
    )
    .await;
    assert!(selected.contains("***secret:TEST_TOKEN***"), "{selected}");
    assert!(!selected.contains(VALUE), "{selected}");
}

#[tokio::test]
async fn urls_bodies_and_other_hosts_get_an_error_and_no_request() {
    let api = mock(0).await;
    let ctx = scoped();
    // in the URL
    let out = text(
        &ctx,
        &format!(
            "SELECT http_get('{}?k=' || secret('TEST_TOKEN'))['error'] AS e",
            api.url("/echo")
        ),
    )
    .await;
    assert!(
        out.contains("may only be used in a header value, not in the URL"),
        "{out}"
    );
    // in a body
    let out = text(
        &ctx,
        &format!(
            "SELECT http_post('{}', secret('TEST_TOKEN'))['error'] AS e",
            api.url("/echo")
        ),
    )
    .await;
    assert!(out.contains("not in the body"), "{out}");
    // in query parameters and form fields
    let out = text(
        &ctx,
        &format!(
            "SELECT http_get('{0}', NULL, MAP {{'k': secret('TEST_TOKEN')}})['error'] AS p, \
             http_post_form('{0}', NULL, MAP {{'k': secret('TEST_TOKEN')}})['error'] AS f",
            api.url("/echo")
        ),
    )
    .await;
    assert!(out.contains("not in a query parameter"), "{out}");
    assert!(out.contains("not in a form field"), "{out}");
    // to a host outside its scope (localhost is not 127.0.0.1 by name)
    let other = api.url("/echo").replace("127.0.0.1", "localhost");
    let out = text(
        &ctx,
        &format!("SELECT http_get('{other}', map(['authorization'], [secret('TEST_TOKEN')]))['error'] AS e"),
    )
    .await;
    assert!(out.contains("may not be sent to host 'localhost'"), "{out}");
    assert!(!out.contains(VALUE), "{out}");
    assert_eq!(api.stats().requests, 0, "nothing was sent");
}

#[tokio::test]
async fn failing_calls_name_the_url_not_the_value() {
    let api = mock(0).await;
    let ctx = scoped();
    run(&ctx, "SET http.on_error = 'fail'").await.unwrap();
    let sql = format!(
        "SELECT http_get('{}', map(['authorization'], [secret('TEST_TOKEN')]))",
        api.url("/status/404")
    );
    let err = run(&ctx, &sql)
        .await
        .expect_err("a 404 fails the query")
        .to_string();
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(!err.contains(VALUE), "{err}");
}

/// A redirect that leaves the origin drops every secret header: the built-in
/// names, `http.secret_headers`, and headers filled from `secret()`; a redirect
/// within the origin keeps them.
#[tokio::test]
async fn redirects_to_another_origin_drop_secret_headers() {
    let api = mock(0).await;
    let ctx = context();
    datafusion_async_udf::AsyncRuntime::of(&ctx)
        .unwrap()
        .secrets()
        .set("TEST_TOKEN", VALUE, "127.0.0.1, localhost");
    run(&ctx, "SET http.secret_headers = 'X-Tenant'")
        .await
        .unwrap();
    let headers = "map(['X-Api-Key', 'X-Tenant', 'X-Custom', 'Accept'], \
                   ['k3y', 't3nant', secret('TEST_TOKEN'), 'text/plain'])";
    let got = |target: String| {
        let ctx = ctx.clone();
        let url = format!("{}?url={target}", api.url("/redirect-to"));
        async move {
            text(
                &ctx,
                &format!(
                    "SELECT json_get_str(r['body'], 'headers', 'x-api-key') AS key, \
                            json_get_str(r['body'], 'headers', 'x-tenant') AS tenant, \
                            json_get_str(r['body'], 'headers', 'x-custom') AS custom, \
                            json_get_str(r['body'], 'headers', 'accept') AS accept \
                     FROM (SELECT http_get('{url}', {headers}) AS r)"
                ),
            )
            .await
        }
    };
    let other = got(api.url("/echo").replace("127.0.0.1", "localhost")).await;
    assert!(
        !other.contains("k3y"),
        "X-Api-Key crossed to another host:\n{other}"
    );
    assert!(
        !other.contains("t3nant"),
        "http.secret_headers crossed:\n{other}"
    );
    assert!(
        !other.contains(VALUE),
        "a secret() header crossed:\n{other}"
    );
    assert!(
        other.contains("text/plain"),
        "ordinary headers follow:\n{other}"
    );
    let same = got(api.url("/echo")).await;
    assert!(
        same.contains("k3y") && same.contains("t3nant") && same.contains(VALUE),
        "{same}"
    );
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
