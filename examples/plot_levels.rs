//! Plots of `spillway levels` runs: resident versus extent bytes per spine level over the build,
//! one panel per backing policy, and throughput and bytes written per policy.
//!
//! ```text
//! cargo run --release --example plot_levels                   # runs the four policies itself
//! cargo run --release --example plot_levels -- --updates 2M --budget 4MiB --out /tmp/plots
//! spillway levels --json ... > lazy.json   # or plot runs made elsewhere:
//! cargo run --release --example plot_levels -- lazy=lazy.json eager=eager.json default=d.json
//! ```
//! Writes `levels_over_time.png` and `policy_throughput.png` to `--out` (default `doc/img`).
//! Text is drawn with a TrueType font (`--font`, default DejaVu Sans).

use std::path::PathBuf;

use clap::Parser;
use plotters::prelude::*;
use spillway_workload::levels::SampleReport;
use spillway_workload::plan::{default_input, Backend, QueryPlan, Workload};
use spillway_workload::report::RunReport;
use spillway_workload::run::{collect_levels, compared_policies};
use spillway_workload::units::parse_count;

/// Parses a byte size (`32MiB`).
fn parse_bytes(s: &str) -> Result<u64, String> {
    spillway::parse_size(s).map_err(|e| e.to_string())
}

#[derive(Parser)]
struct Args {
    /// Runs to plot as `policy=file.json` (`spillway levels --json` output); none: run
    /// `memory`, `lazy`, `eager` and `default` at `--updates` / `--budget` now.
    runs: Vec<String>,
    /// Updates of the runs made here.
    #[arg(long, default_value = "20M", value_parser = parse_count)]
    updates: u64,
    /// Pool budget of the runs made here.
    #[arg(long, default_value = "32MiB", value_parser = parse_bytes)]
    budget: u64,
    /// Where the PNGs go.
    #[arg(long, default_value = "doc/img")]
    out: PathBuf,
    /// A TrueType font for the labels.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    font: PathBuf,
}

const MIB: f64 = (1 << 20) as f64;

/// Which bytes of a sample a line plots.
#[derive(Clone, Copy)]
enum Field {
    /// `resident_bytes`.
    Resident,
    /// `extent_bytes`.
    Extent,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let font =
        std::fs::read(&args.font).map_err(|e| format!("--font {}: {e}", args.font.display()))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| format!("--font {}: not a usable TrueType font", args.font.display()))?;
    let runs = if args.runs.is_empty() {
        run_here(&args)?
    } else {
        read_runs(&args.runs)?
    };
    std::fs::create_dir_all(&args.out)?;
    let over_time = args.out.join("levels_over_time.png");
    levels_over_time(&runs, &over_time)?;
    let throughput = args.out.join("policy_throughput.png");
    policy_throughput(&runs, &throughput)?;
    println!("wrote {} and {}", over_time.display(), throughput.display());
    Ok(())
}

/// Runs every policy here, as `spillway levels --json` would.
fn run_here(args: &Args) -> Result<Vec<(String, RunReport)>, Box<dyn std::error::Error>> {
    let mut runs = Vec::new();
    for (name, backend, policy) in compared_policies() {
        let plan = QueryPlan {
            policy,
            ..QueryPlan::local(
                Workload::Join,
                backend,
                default_input(args.updates),
                args.budget,
            )?
        };
        eprintln!("plot_levels: running {name}...");
        let (report, levels) = collect_levels(plan)?;
        runs.push((name.to_string(), report.with_levels(&levels)));
    }
    Ok(runs)
}

fn read_runs(specs: &[String]) -> Result<Vec<(String, RunReport)>, Box<dyn std::error::Error>> {
    specs
        .iter()
        .map(|spec| {
            let (name, path) = spec
                .split_once('=')
                .ok_or_else(|| format!("{spec:?}: expected policy=file.json"))?;
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            let json = serde_json::from_str(text.trim()).map_err(|e| format!("{path}: {e}"))?;
            Ok((name.to_string(), json))
        })
        .collect()
}

/// One panel per pool run: per level, resident bytes (solid) and extent bytes (dashed) after
/// each build round.
fn levels_over_time(
    runs: &[(String, RunReport)],
    path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let pooled: Vec<&(String, RunReport)> = runs
        .iter()
        .filter(|(_, v)| v.backend == Backend::Pool)
        .collect();
    let root =
        BitMapBackend::new(path, (560 * pooled.len().max(1) as u32, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, pooled.len().max(1)));
    for (panel, (name, run)) in panels.iter().zip(&pooled) {
        let series: &[SampleReport] = run.series.as_deref().unwrap_or_default();
        let at = |s: &SampleReport, field: Field, level: usize| {
            let bytes = match field {
                Field::Resident => &s.resident_bytes,
                Field::Extent => &s.extent_bytes,
            };
            bytes.get(level).copied().unwrap_or(0) as f64
        };
        let levels = series
            .iter()
            .map(|s| s.resident_bytes.len())
            .max()
            .unwrap_or(0);
        let used: Vec<usize> = (0..levels)
            .filter(|&l| {
                series
                    .iter()
                    .any(|s| at(s, Field::Resident, l) + at(s, Field::Extent, l) > 0.0)
            })
            .collect();
        let x_max = series.iter().map(|s| s.elapsed_s).fold(1.0, f64::max);
        let y_max = series
            .iter()
            .flat_map(|s| {
                used.iter()
                    .flat_map(move |&l| [at(s, Field::Resident, l), at(s, Field::Extent, l)])
            })
            .fold(1.0, f64::max)
            / MIB;
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{name}: per level, resident (solid) / extents (dashed)"),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max * 1.02, 0.0..y_max * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("seconds into the build (one point per round)")
            .y_desc("MiB")
            .draw()?;
        for &level in &used {
            let color = Palette99::pick(level).to_rgba();
            let points = |field: Field| {
                series
                    .iter()
                    .map(move |s| (s.elapsed_s, at(s, field, level) / MIB))
                    .collect::<Vec<_>>()
            };
            chart
                .draw_series(LineSeries::new(
                    points(Field::Resident),
                    color.stroke_width(2),
                ))?
                .label(format!("level {level}"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(DashedLineSeries::new(
                points(Field::Extent),
                6,
                4,
                color.stroke_width(2),
            ))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Throughput (million updates per second over the whole run) and extent bytes written, per
/// policy.
fn policy_throughput(
    runs: &[(String, RunReport)],
    path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let names: Vec<String> = runs.iter().map(|(n, _)| n.clone()).collect();
    let throughput: Vec<f64> = runs
        .iter()
        .map(|(_, v)| v.updates as f64 / v.total_s.max(1e-9) / 1e6)
        .collect();
    let written: Vec<f64> = runs
        .iter()
        .map(|(_, v)| v.pool.extent_bytes_written as f64 / MIB)
        .collect();
    bars(
        &left,
        "throughput (M updates/s, whole run)",
        &names,
        &throughput,
    )?;
    bars(&right, "extent bytes written (MiB)", &names, &written)?;
    root.present()?;
    Ok(())
}

fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    names: &[String],
    values: &[f64],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let y_max = values.iter().copied().fold(1e-9, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..names.len() as f64, 0.0..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                names[i].clone()
            } else {
                String::new()
            }
        })
        .draw()?;
    chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
        Rectangle::new(
            [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, v)],
            Palette99::pick(i).filled(),
        )
    }))?;
    chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
        Text::new(
            format!("{v:.2}"),
            (i as f64 + 0.3, v + y_max * 0.02),
            ("sans-serif", 13),
        )
    }))?;
    Ok(())
}
