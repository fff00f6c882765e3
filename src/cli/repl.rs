//! `dfasync`'s interactive loop and `-c` commands: datafusion-cli's, plus the
//! shell's background statements (`\submit`, `\jobs`, `\wait`, `\result`,
//! `\cancel`; see [`super::jobs`]).
//!
//! The loop is datafusion-cli's `exec_from_repl` (same editor, highlighting,
//! history file and backslash commands), which has no way to add commands.

use datafusion::common::{DataFusionError, Result};
use datafusion_cli::command::{Command, OutputFormat};
use datafusion_cli::exec;
use datafusion_cli::helper::CliHelper;
use datafusion_cli::print_options::PrintOptions;
use rustyline::Editor;
use rustyline::error::ReadlineError;

use super::Shell;
use super::jobs::{COMMANDS, JobCommand};

/// Runs one line that is not a datafusion-cli backslash command: one of our
/// commands, or SQL statements.
async fn line(shell: &Shell, line: &str, print_options: &PrintOptions) -> Result<()> {
    match JobCommand::parse(line) {
        Some(Ok(command)) => shell.jobs.run(&shell.ctx, command, print_options).await,
        Some(Err(usage)) => Err(DataFusionError::Plan(usage)),
        None => exec::exec_from_commands(shell, vec![line.to_string()], print_options).await,
    }
}

/// The `-c` commands, in order; the first error ends them.
pub async fn commands(
    shell: &Shell,
    commands: Vec<String>,
    print_options: &PrintOptions,
) -> Result<()> {
    for command in commands {
        line(shell, &command, print_options).await?;
    }
    Ok(())
}

/// The interactive loop. Ctrl-C stops the statement (or `\wait`) running in the
/// foreground; background jobs go on.
pub async fn repl(shell: &Shell, print_options: &mut PrintOptions) -> rustyline::Result<()> {
    let dialect = || shell.ctx.state().config().options().sql_parser.dialect;
    let mut rl = Editor::new()?;
    rl.set_helper(Some(CliHelper::new(&dialect(), print_options.color)));
    rl.load_history(".history").ok();
    loop {
        let input = match rl.readline("> ") {
            Ok(input) => input,
            Err(ReadlineError::Interrupted) => {
                println!("^C");
                if let Some(helper) = rl.helper() {
                    helper.reset_hint();
                }
                continue;
            }
            Err(ReadlineError::Eof) => {
                println!("\\q");
                break;
            }
            Err(err) => {
                eprintln!("Unknown error happened {err:?}");
                break;
            }
        };
        rl.add_history_entry(input.trim_end())?;
        let theirs = input
            .strip_prefix('\\')
            .filter(|_| JobCommand::parse(&input).is_none())
            .map(|rest| rest.split_whitespace().collect::<Vec<_>>().join(" "));
        if let Some(command) = theirs {
            match command.parse::<Command>() {
                Ok(Command::Quit) => break,
                Ok(cmd) => {
                    if let Err(e) = builtin(shell, &cmd, print_options).await {
                        eprintln!("{e}");
                    }
                }
                Err(()) => eprintln!(
                    "'\\{command}' is not a valid command, you can use '\\?' to see all commands"
                ),
            }
            continue;
        }
        tokio::select! {
            done = line(shell, &input, print_options) => {
                if let Err(e) = done {
                    eprintln!("{e}");
                }
            }
            _ = tokio::signal::ctrl_c() => println!("^C"),
        }
        // the dialect may have changed
        if let Some(helper) = rl.helper_mut() {
            helper.set_dialect(&dialect());
        }
    }
    rl.save_history(".history")
}

/// One of datafusion-cli's backslash commands; `\?` lists ours too.
async fn builtin(shell: &Shell, cmd: &Command, print_options: &mut PrintOptions) -> Result<()> {
    match cmd {
        Command::OutputFormat(None) => {
            println!("Output format is {:?}.", print_options.format);
            Ok(())
        }
        Command::OutputFormat(Some(sub)) => match sub.parse::<OutputFormat>() {
            Ok(format) => format.execute(print_options),
            Err(()) => Err(DataFusionError::Plan(format!(
                "'\\pset {sub}' is not a valid command, you can use '\\?' to see all commands"
            ))),
        },
        Command::Help => {
            cmd.execute(shell, print_options).await?;
            println!("Background statements (dfasync):");
            for (command, help) in COMMANDS {
                println!("  {command:<16} {help}");
            }
            Ok(())
        }
        _ => cmd.execute(shell, print_options).await,
    }
}
