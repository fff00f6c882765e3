//! `dfasync`'s background statements: `\submit <SQL>`, `\jobs`, `\wait N`,
//! `\result N`, `\cancel N`.
//!
//! A submitted statement runs as a job of the session (see [`crate::jobs`]):
//! its own fair share of the budget, its own progress; Ctrl-C stops the
//! foreground statement (or a `\wait`), never a job. Jobs are numbered 1, 2, …
//! in the order submitted, and kept with their results until the shell exits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{Field, Schema};
use datafusion::common::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use datafusion_cli::print_options::PrintOptions;
use parking_lot::Mutex;

use crate::SessionAsyncExt;
use crate::jobs::{Job, JobState, QueryHandle};

/// The shell's commands of its own, with their help.
pub const COMMANDS: [(&str, &str); 5] = [
    (
        "\\submit <SQL>",
        "run a statement in the background; prints its job number",
    ),
    (
        "\\jobs",
        "list the background statements: state and progress",
    ),
    (
        "\\wait N",
        "wait for job N (Ctrl-C stops waiting, not the job)",
    ),
    ("\\result N", "print job N's rows once it is done"),
    ("\\cancel N", "stop job N and its calls in flight"),
];

/// A command of ours, parsed from a line starting with `\`.
#[derive(Debug, PartialEq, Eq)]
pub enum JobCommand {
    Submit(String),
    List,
    Wait(usize),
    Result(usize),
    Cancel(usize),
}

impl JobCommand {
    /// `None`: not one of ours (datafusion-cli's, or a statement). `Some(Err)`:
    /// ours, badly written.
    pub fn parse(line: &str) -> Option<Result<Self, String>> {
        let line = line.trim().trim_end_matches(';').trim_end();
        let rest = line.strip_prefix('\\')?;
        let (name, arg) = rest
            .split_once(char::is_whitespace)
            .map_or((rest, ""), |(n, a)| (n, a.trim()));
        let number = |usage: &str| {
            arg.trim_start_matches('%')
                .parse::<usize>()
                .map_err(|_| format!("usage: {usage} (a job number from \\jobs)"))
        };
        Some(match name {
            "submit" if arg.is_empty() => Err("usage: \\submit <SQL statement>".into()),
            "submit" => Ok(Self::Submit(arg.to_string())),
            "jobs" => Ok(Self::List),
            "wait" => number("\\wait N").map(Self::Wait),
            "result" => number("\\result N").map(Self::Result),
            "cancel" => number("\\cancel N").map(Self::Cancel),
            _ => return None,
        })
    }
}

/// A background statement.
struct Entry {
    job: Job,
    handle: Option<QueryHandle<Vec<RecordBatch>>>,
    result: Option<Result<Vec<RecordBatch>, String>>,
}

/// The shell's background statements.
#[derive(Default, Clone)]
pub struct ShellJobs {
    entries: Arc<Mutex<BTreeMap<usize, Entry>>>,
}

impl ShellJobs {
    /// Runs `command`, printing what it shows with `print_options`.
    pub async fn run(
        &self,
        ctx: &SessionContext,
        command: JobCommand,
        print_options: &PrintOptions,
    ) -> Result<()> {
        match command {
            JobCommand::Submit(sql) => {
                let handle = ctx.sql_async(&sql).await?;
                let mut entries = self.entries.lock();
                let n = entries.keys().next_back().map_or(1, |n| n + 1);
                entries.insert(
                    n,
                    Entry {
                        job: handle.job().clone(),
                        handle: Some(handle),
                        result: None,
                    },
                );
                println!("[{n}] submitted");
                Ok(())
            }
            JobCommand::List => {
                let batch = self.table()?;
                let rows = batch.num_rows();
                print_options.print_batches(
                    batch.schema(),
                    &[batch],
                    Instant::now(),
                    rows,
                    &ctx.state().config().options().format,
                )
            }
            JobCommand::Wait(n) => {
                if self.job(n)?.state() == JobState::Running {
                    println!("[{n}] waiting (Ctrl-C stops waiting, not the job)");
                }
                let state = self.wait(n).await?;
                println!("[{n}] {}", describe(&state));
                Ok(())
            }
            JobCommand::Result(n) => self.result(ctx, n, print_options).await,
            JobCommand::Cancel(n) => {
                self.job(n)?.cancel();
                println!("[{n}] cancelled");
                Ok(())
            }
        }
    }

    fn job(&self, n: usize) -> Result<Job> {
        self.entries
            .lock()
            .get(&n)
            .map(|e| e.job.clone())
            .ok_or_else(|| no_job(n))
    }

    /// Waits for job `n` to end; its state.
    async fn wait(&self, n: usize) -> Result<JobState> {
        let handle = {
            let mut entries = self.entries.lock();
            let entry = entries.get_mut(&n).ok_or_else(|| no_job(n))?;
            entry.handle.take()
        };
        if let Some(handle) = handle {
            // a Ctrl-C drops this future, not the job: the handle goes back
            let mut back = PutBack {
                jobs: self,
                n,
                handle: Some(handle),
            };
            let result = back.handle.take().expect("just set").await;
            let mut entries = self.entries.lock();
            if let Some(entry) = entries.get_mut(&n) {
                entry.result = Some(result.map_err(|e| e.to_string()));
            }
        }
        Ok(self.job(n)?.state())
    }

    async fn result(
        &self,
        ctx: &SessionContext,
        n: usize,
        print_options: &PrintOptions,
    ) -> Result<()> {
        if self.job(n)?.state() == JobState::Running {
            return Err(DataFusionError::Execution(format!(
                "job {n} is still running (\\wait {n} waits for it)"
            )));
        }
        // it has ended: this takes its result from the handle at once
        self.wait(n).await?;
        let result = {
            let entries = self.entries.lock();
            entries.get(&n).and_then(|e| e.result.clone())
        };
        let batches = match result {
            Some(Ok(batches)) => batches,
            Some(Err(e)) => return Err(DataFusionError::Execution(format!("job {n}: {e}"))),
            None => return Err(DataFusionError::Execution(format!("job {n}: no result"))),
        };
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let schema = batches
            .first()
            .map_or_else(|| Arc::new(Schema::empty()), RecordBatch::schema);
        print_options.print_batches(
            schema,
            &batches,
            Instant::now(),
            rows,
            &ctx.state().config().options().format,
        )
    }

    /// `\jobs` as a table.
    fn table(&self) -> Result<RecordBatch> {
        let entries = self.entries.lock();
        let text = |f: &dyn Fn(usize, &Entry) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|(n, e)| f(*n, e)),
            ))
        };
        let number = |f: &dyn Fn(&Entry) -> usize| -> ArrayRef {
            Arc::new(UInt64Array::from_iter_values(
                entries.values().map(|e| f(e) as u64),
            ))
        };
        let columns = vec![
            (
                "job",
                Arc::new(UInt64Array::from_iter_values(
                    entries.keys().map(|n| *n as u64),
                )) as ArrayRef,
            ),
            ("state", text(&|_, e| describe(&e.job.state()))),
            ("calls done", number(&|e| e.job.progress().calls_done)),
            ("in flight", number(&|e| e.job.progress().in_flight)),
            ("errors", number(&|e| e.job.progress().errors)),
            ("retries", number(&|e| e.job.progress().retries)),
            ("rows", number(&|e| e.job.progress().rows)),
            (
                "elapsed",
                text(&|_, e| format!("{:.1} s", e.job.progress().elapsed.as_secs_f64())),
            ),
            ("query", text(&|_, e| e.job.summary().to_string())),
        ];
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, c)| Field::new(*name, c.data_type().clone(), false))
            .collect();
        let arrays = columns.into_iter().map(|(_, c)| c).collect();
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
    }
}

/// Puts a handle back into its entry when a `\wait` is interrupted.
struct PutBack<'a> {
    jobs: &'a ShellJobs,
    n: usize,
    handle: Option<QueryHandle<Vec<RecordBatch>>>,
}

impl Drop for PutBack<'_> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take()
            && let Some(entry) = self.jobs.entries.lock().get_mut(&self.n)
        {
            entry.handle = Some(handle);
        }
    }
}

fn no_job(n: usize) -> DataFusionError {
    DataFusionError::Execution(format!("no job {n} (\\jobs lists them)"))
}

fn describe(state: &JobState) -> String {
    match state {
        JobState::Running => "running".into(),
        JobState::Done => "done".into(),
        JobState::Failed(e) => format!("failed: {e}"),
        JobState::Cancelled => "cancelled".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(
            JobCommand::parse("\\submit SELECT 1;"),
            Some(Ok(JobCommand::Submit("SELECT 1".into())))
        );
        assert_eq!(JobCommand::parse(" \\jobs "), Some(Ok(JobCommand::List)));
        assert_eq!(JobCommand::parse("\\wait 3"), Some(Ok(JobCommand::Wait(3))));
        assert_eq!(
            JobCommand::parse("\\result %2"),
            Some(Ok(JobCommand::Result(2)))
        );
        assert_eq!(
            JobCommand::parse("\\cancel 1"),
            Some(Ok(JobCommand::Cancel(1)))
        );
        assert!(matches!(JobCommand::parse("\\wait x"), Some(Err(e)) if e.contains("\\wait N")));
        assert!(matches!(JobCommand::parse("\\submit"), Some(Err(_))));
        // datafusion-cli's own, and statements: not ours
        assert_eq!(JobCommand::parse("\\d"), None);
        assert_eq!(JobCommand::parse("SELECT 1"), None);
    }
}
