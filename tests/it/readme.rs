//! README.md stays true: its Rust examples are `examples/*.rs` verbatim, and every
//! statement of its SQL examples runs against the mock API.

use crate::common;

const README: &str = include_str!("../../README.md");

/// The fenced blocks of `lang` in the README.
fn blocks(lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = README;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("\n```\n").expect("closed fence");
        out.push(body[..=end].to_string());
        rest = &body[end..];
    }
    out
}

#[test]
fn rust_examples_are_the_example_files() {
    let rust = blocks("rust");
    let files = [
        ("examples/embed.rs", include_str!("../../examples/embed.rs")),
        (
            "examples/shapes.rs",
            include_str!("../../examples/shapes.rs"),
        ),
        ("examples/jobs.rs", include_str!("../../examples/jobs.rs")),
    ];
    assert_eq!(rust.len(), files.len(), "one README block per example file");
    for (block, (name, text)) in rust.iter().zip(files) {
        assert_eq!(block, text, "README's Rust block must equal {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_examples_run() {
    let api = common::mock(0).await;
    let ctx = common::context();
    datafusion_async_udf::AsyncRuntime::of(&ctx)
        .unwrap()
        .secrets()
        .set("CAT_API_KEY", "key-from-the-test", "127.0.0.1");
    let sql = blocks("sql");
    assert!(!sql.is_empty());
    let mut ran = 0;
    for block in sql {
        let block = block.replace("http://127.0.0.1:8089", &api.base_url());
        for statement in block.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            let batches = common::run(&ctx, statement)
                .await
                .unwrap_or_else(|e| panic!("README statement failed: {statement}\n{e}"));
            let text = arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string();
            assert!(!text.contains("error: "), "{statement}\n{text}");
            ran += 1;
        }
    }
    assert!(ran >= 8, "ran {ran} statements");
    assert!(api.stats().requests >= 2100);
}

#[test]
fn two_setup_commands_are_documented_and_run_by_ci() {
    let sh = blocks("sh");
    let ci = include_str!("../../.ci/run");
    let commands: Vec<&str> = sh[0]
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        commands,
        [
            "cargo run --all-features --example cats",
            "cargo test --all-features"
        ]
    );
    for command in commands {
        assert!(ci.contains(command), ".ci/run runs README's `{command}`");
    }
    // the examples README shows, as README names their commands
    let readme = include_str!("../../README.md");
    for example in ["embed", "shapes", "jobs"] {
        let command = format!("cargo run --all-features --example {example}");
        assert!(readme.contains(&command), "README names `{command}`");
        assert!(ci.contains(&command), ".ci/run runs `{command}`");
    }
}
