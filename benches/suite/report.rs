//! What a run produces: tables (printed, and written as Markdown and JSON), targets
//! met or missed, and the SVG plots.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

/// One table of figures.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub title: String,
    /// What was measured and how, one paragraph.
    pub about: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: &str, about: &str, header: &[&str]) -> Self {
        Self {
            title: title.into(),
            about: about.into(),
            header: header
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("### {}\n\n{}\n\n", self.title, self.about);
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out += &line(&self.header);
        out += &line(&vec!["---".to_string(); self.header.len()]);
        for row in &self.rows {
            out += &line(row);
        }
        out
    }
}

/// A target of the suite and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub measured: String,
    /// None: not measured in this run (the reason is in `measured`).
    pub met: Option<bool>,
}

impl Target {
    fn mark(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        }
    }
}

/// Wall times (s) of the seed job at one concurrency.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SeedPoint {
    pub concurrency: usize,
    pub ours: f64,
    pub reqwest: f64,
    pub ideal: f64,
}

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub mode: String,
    pub machine: String,
    pub tables: Vec<Table>,
    pub targets: Vec<Target>,
    /// The seed job's wall times by concurrency.
    pub seed_points: Vec<SeedPoint>,
    /// (label, rows per second) of the zero-latency run.
    pub throughput: Vec<(String, f64)>,
}

impl Report {
    pub fn table(&mut self, table: Table) {
        println!("\n{}", table.markdown());
        self.tables.push(table);
    }

    pub fn target(&mut self, what: &str, measured: String, met: bool) {
        self.push_target(what, measured, Some(met));
    }

    /// A target this run could not measure, and why.
    pub fn unmeasured(&mut self, what: &str, why: String) {
        self.push_target(what, why, None);
    }

    fn push_target(&mut self, what: &str, measured: String, met: Option<bool>) {
        let target = Target {
            what: what.into(),
            measured,
            met,
        };
        let quick = if self.mode == "quick" {
            " (quick run: indicative only)"
        } else {
            ""
        };
        println!(
            "target {}{quick}: {what} — {}",
            target.mark(),
            target.measured
        );
        self.targets.push(target);
    }

    /// The whole report as Markdown: how it was run, the machine, targets, tables.
    pub fn markdown(&self, plots: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## Results ({} run)\n", self.mode);
        let _ = writeln!(out, "Machine: {}\n", self.machine);
        if self.mode == "quick" {
            let _ = writeln!(
                out,
                "Quick run: sizes are too small for the targets to mean anything; \
                 only the full run decides.\n"
            );
        }
        let _ = writeln!(out, "### Targets\n");
        let _ = writeln!(out, "| target | measured | |\n|---|---|---|");
        for t in &self.targets {
            let _ = writeln!(out, "| {} | {} | {} |", t.what, t.measured, t.mark());
        }
        out.push('\n');
        for t in &self.tables {
            out += &t.markdown();
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "### Plots\n\n![wall time vs concurrency]({plots}/seed.svg)\n"
        );
        let _ = writeln!(out, "![throughput at zero latency]({plots}/throughput.svg)");
        out
    }

    /// Writes `report.md`, `report.json` and the plots into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.md"), self.markdown("."))?;
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(self).map_err(std::io::Error::other)?,
        )?;
        self.plots(dir)
    }

    /// Writes `seed.svg` and `throughput.svg` into `dir` (for the parts that ran).
    pub fn plots(&self, dir: &Path) -> std::io::Result<()> {
        if !self.seed_points.is_empty() {
            super::plots::seed(&self.seed_points, &dir.join("seed.svg"))?;
        }
        if !self.throughput.is_empty() {
            super::plots::throughput(&self.throughput, &dir.join("throughput.svg"))?;
        }
        Ok(())
    }
}

/// CPU model, cores and memory of this machine, from /proc (Linux).
pub fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| "unknown CPU".into(), |s| s.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cores} cores ({cpu}), {mem_gib:.0} GiB")
}

/// Seconds with 2 decimals (3 under 1 s).
pub fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{s:.3}")
    } else {
        format!("{s:.2}")
    }
}

/// A count with thousands separators.
pub fn count(n: f64) -> String {
    indicatif::HumanCount(n.max(0.0).round() as u64).to_string()
}
