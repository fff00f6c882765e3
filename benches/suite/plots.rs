//! SVG plots of a run (plotters).

use std::path::Path;

use plotters::prelude::*;

use crate::report::SeedPoint;

/// A line of the seed plot: label, colour, and its y for a point.
type Series = (&'static str, RGBColor, fn(&SeedPoint) -> f64);

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Wall time of the seed job against concurrency, with the ideal ceil(N/c)·L line.
pub fn seed(points: &[SeedPoint], path: &Path) -> std::io::Result<()> {
    let root = SVGBackend::new(path, (720, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(io)?;
    let x_max = points
        .iter()
        .map(|p| p.concurrency)
        .max()
        .unwrap_or(1)
        .max(2) as f64
        * 1.5;
    let ys = points.iter().flat_map(|p| [p.ours, p.reqwest, p.ideal]);
    let y_min = ys.clone().fold(f64::INFINITY, f64::min).max(1e-3) / 1.5;
    let y_max = ys.fold(0.0, f64::max).max(y_min * 2.0) * 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption("Seed job: wall time vs max_in_flight", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.8f64..x_max).log_scale(), (y_min..y_max).log_scale())
        .map_err(io)?;
    chart
        .configure_mesh()
        .x_desc("max_in_flight (concurrency)")
        .y_desc("wall time, s (log)")
        .draw()
        .map_err(io)?;
    let series: [Series; 3] = [
        ("ideal ceil(N/c)·L", RGBColor(150, 150, 150), |p| p.ideal),
        ("plain tokio + reqwest loop", RGBColor(230, 120, 20), |p| {
            p.reqwest
        }),
        ("http_get + NOOP sink", RGBColor(20, 90, 200), |p| p.ours),
    ];
    for (label, color, y) in series {
        let line: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.concurrency as f64, y(p)))
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(io)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(io)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(io)?;
    root.present().map_err(io)
}

/// Rows per second of each way to make the zero-latency calls, as bars.
pub fn throughput(bars: &[(String, f64)], path: &Path) -> std::io::Result<()> {
    let root = SVGBackend::new(path, (720, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(io)?;
    let max = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption("Zero-latency calls: rows per second", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(10)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..bars.len().max(1) as f64, 0f64..max)
        .map_err(io)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc("rows / s")
        .draw()
        .map_err(io)?;
    let color = RGBColor(20, 90, 200);
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            Rectangle::new(
                [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)],
                color.filled(),
            )
        }))
        .map_err(io)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (label, v))| {
            Text::new(
                format!("{label}: {v:.0}"),
                (i as f64 + 0.15, v + max * 0.03),
                ("sans-serif", 13),
            )
        }))
        .map_err(io)?;
    root.present().map_err(io)
}
