//! `mspinn compare`: the error histories of several training runs on one plot and in one table,
//! e.g. the paper's Adam + L-BFGS against Adam + Levenberg–Marquardt on the same problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::output::write_columns;
use crate::plot::{line_chart, solution_chart, Axes, Series, SeriesStyle};
use crate::run::{read_history, HistoryRow};
use mspinn_train::metrics::{median, rel_linf};

#[derive(Args, Clone)]
pub struct CompareArgs {
    /// Run folders written by `mspinn train` (each with trial-*/history.csv).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Legend labels, comma separated, one per run (default: the folder names).
    #[arg(long)]
    pub labels: Option<String>,
    /// Horizontal axis: training iteration or wall seconds.
    #[arg(long, value_enum, default_value_t = XAxis::Iteration)]
    pub x: XAxis,
    /// Error plotted: relative L∞ (max|u − u_NN| / max|u|) or relative L2.
    #[arg(long, value_enum, default_value_t = Metric::Linf)]
    pub metric: Metric,
    /// Output stem: STEM.png, STEM.svg and STEM.csv (the median curves).
    #[arg(long, default_value = "compare")]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Metric {
    Linf,
    L2,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum XAxis {
    Iteration,
    Seconds,
}

/// One run's trials, and the median over trials at every iteration that all of them logged.
struct RunHistory {
    label: String,
    trials: Vec<Vec<HistoryRow>>,
    iteration: Vec<f64>,
    seconds: Vec<f64>,
    rel_linf: Vec<f64>,
    rel_l2: Vec<f64>,
}

fn load(dir: &Path, label: String) -> Result<RunHistory> {
    let mut trials = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read run folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("trial-"))
        })
        .collect();
    entries.sort();
    for t in entries {
        let h = t.join("history.csv");
        if h.exists() {
            // An empty history (a trial stopped before its first row) has nothing to compare.
            let rows = read_history(&h)?;
            if !rows.is_empty() {
                trials.push(rows);
            }
        }
    }
    anyhow::ensure!(
        !trials.is_empty(),
        "{} has no trial-*/history.csv (runs from before error histories were logged cannot be compared)",
        dir.display()
    );
    // The last row logged at an iteration wins (phase ends log the same iteration twice).
    let per_trial: Vec<BTreeMap<u64, &HistoryRow>> = trials
        .iter()
        .map(|rows| rows.iter().map(|r| (r.iteration, r)).collect())
        .collect();
    let (mut iteration, mut seconds, mut rel_linf, mut rel_l2) = (vec![], vec![], vec![], vec![]);
    for it in per_trial[0].keys() {
        let rows: Vec<&HistoryRow> = per_trial
            .iter()
            .filter_map(|m| m.get(it).copied())
            .collect();
        if rows.len() != per_trial.len() {
            continue;
        }
        let med =
            |f: fn(&HistoryRow) -> f64| median(&rows.iter().map(|r| f(r)).collect::<Vec<_>>());
        iteration.push(*it as f64);
        seconds.push(med(|r| r.seconds));
        rel_linf.push(med(|r| r.rel_linf));
        rel_l2.push(med(|r| r.rel_l2));
    }
    Ok(RunHistory {
        label,
        trials,
        iteration,
        seconds,
        rel_linf,
        rel_l2,
    })
}

pub fn run(a: CompareArgs) -> Result<()> {
    let labels: Vec<String> = match &a.labels {
        Some(l) => l.split(',').map(|s| s.trim().to_string()).collect(),
        None => a
            .runs
            .iter()
            .map(|p| {
                p.file_name()
                    .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
            })
            .collect(),
    };
    anyhow::ensure!(
        labels.len() == a.runs.len(),
        "--labels has {} entries for {} runs",
        labels.len(),
        a.runs.len()
    );
    let runs: Vec<RunHistory> = a
        .runs
        .iter()
        .zip(labels)
        .map(|(d, l)| load(d, l))
        .collect::<Result<_>>()?;

    println!(
        "{:<28} {:>6} {:>12} {:>12} {:>12} {:>10}",
        "run", "trials", "rel L∞ med", "rel L∞ max", "rel L2 med", "seconds"
    );
    for r in &runs {
        let last = |f: fn(&HistoryRow) -> f64| -> Vec<f64> {
            r.trials.iter().filter_map(|t| t.last().map(f)).collect()
        };
        let linf = last(|x| x.rel_linf);
        let worst = linf.iter().copied().fold(f64::NAN, f64::max);
        println!(
            "{:<28} {:>6} {:>12.3e} {:>12.3e} {:>12.3e} {:>10.1}",
            r.label,
            r.trials.len(),
            median(&linf),
            worst,
            median(&last(|x| x.rel_l2)),
            median(&last(|x| x.seconds))
        );
    }

    let names: Vec<String> = runs
        .iter()
        .map(|r| format!("{} (median of {})", r.label, r.trials.len()))
        .collect();
    let series: Vec<Series> = runs
        .iter()
        .zip(&names)
        .map(|(r, name)| Series {
            name,
            x: match a.x {
                XAxis::Iteration => &r.iteration,
                XAxis::Seconds => &r.seconds,
            },
            y: match a.metric {
                Metric::Linf => &r.rel_linf,
                Metric::L2 => &r.rel_l2,
            },
            style: SeriesStyle::Line,
        })
        .collect();
    let x_label = match a.x {
        XAxis::Iteration => "iteration",
        XAxis::Seconds => "wall seconds (median over trials)",
    };
    line_chart(
        &a.out,
        &Axes {
            title: "error against the reference solution during training",
            x_label,
            y_label: match a.metric {
                Metric::Linf => "relative L∞ error",
                Metric::L2 => "relative L2 error",
            },
            log_x: false,
            log_y: true,
        },
        &series,
    )?;

    // The median curves as one CSV: a column block per run (runs log at different iterations).
    let mut cols: Vec<Vec<f64>> = Vec::new();
    let mut head: Vec<String> = Vec::new();
    let len = runs.iter().map(|r| r.iteration.len()).max().unwrap_or(0);
    let pad = |v: &[f64]| -> Vec<f64> {
        let mut v = v.to_vec();
        v.resize(len, f64::NAN);
        v
    };
    for (k, r) in runs.iter().enumerate() {
        for (name, v) in [
            ("iteration", &r.iteration),
            ("seconds", &r.seconds),
            ("rel_linf", &r.rel_linf),
            ("rel_l2", &r.rel_l2),
        ] {
            head.push(format!("run{k}_{name}"));
            cols.push(pad(v));
        }
    }
    let h: Vec<&str> = head.iter().map(String::as_str).collect();
    let c: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
    let csv = a.out.with_extension("csv");
    write_columns(&csv, &h, &c)?;
    println!(
        "plot: {}.png / .svg, median curves: {}",
        a.out.display(),
        csv.display()
    );
    solutions(&a.out, &runs, &a.runs)
}

/// A run's predictions.csv: the evaluation grid, the exact u and each trial's network on it.
struct Predictions {
    x: Vec<f64>,
    u: Vec<f64>,
    trials: Vec<Vec<f64>>,
}

fn load_predictions(dir: &Path) -> Result<Option<Predictions>> {
    let path = dir.join("predictions.csv");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); head.len()];
    for (k, line) in lines.enumerate() {
        for (c, v) in cols.iter_mut().zip(line.split(',')) {
            c.push(v.trim().parse().with_context(|| {
                format!("{} line {}: {v:?} is not a number", path.display(), k + 2)
            })?);
        }
    }
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .map(|i| cols[i].clone())
    };
    let (Some(x), Some(u)) = (col("x"), col("u")) else {
        anyhow::bail!("{} has no x and u columns", path.display());
    };
    let trials = head
        .iter()
        .zip(&cols)
        .filter(|(h, _)| h.starts_with("trial_"))
        .map(|(_, c)| c.clone())
        .collect();
    Ok(Some(Predictions { x, u, trials }))
}

/// The solutions of the runs' median trials (by relative L∞ error) against the exact u (when the
/// runs share one), and their pointwise errors on a log scale: what the error curves' end points
/// look like in x.
fn solutions(stem: &Path, runs: &[RunHistory], dirs: &[PathBuf]) -> Result<()> {
    let mut preds = Vec::new();
    for d in dirs {
        match load_predictions(d)? {
            Some(p) if !p.trials.is_empty() => preds.push(p),
            _ => {
                println!(
                    "(no solution plots: {} has no predictions.csv with trials)",
                    d.display()
                );
                return Ok(());
            }
        }
    }
    let mut names = Vec::new();
    let mut median_trials = Vec::new();
    let mut errors = Vec::new();
    for (r, p) in runs.iter().zip(&preds) {
        let mut ranked: Vec<(f64, usize)> = p
            .trials
            .iter()
            .enumerate()
            .map(|(k, t)| (rel_linf(t, &p.u), k))
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (linf, k) = ranked[(ranked.len() - 1) / 2];
        println!("{}: median trial {k}, rel. L∞ {linf:e}", r.label);
        names.push(format!("{} (trial {k}, rel. L∞ {linf:.2e})", r.label));
        errors.push(
            p.trials[k]
                .iter()
                .zip(&p.u)
                .map(|(a, b)| (a - b).abs())
                .collect::<Vec<f64>>(),
        );
        median_trials.push(p.trials[k].clone());
    }
    // One exact solution for all: only runs of the same problem (ε, forcing) on the same grid.
    let first = &preds[0];
    let same_problem = preds.iter().all(|p| p.x == first.x && p.u == first.u);
    if same_problem {
        let mut s = vec![Series {
            name: "exact u",
            x: &first.x,
            y: &first.u,
            style: SeriesStyle::Line,
        }];
        for (name, y) in names.iter().zip(&median_trials) {
            s.push(Series {
                name,
                x: &first.x,
                y,
                style: SeriesStyle::Dashed,
            });
        }
        let sol = PathBuf::from(format!("{}-solutions", stem.display()));
        solution_chart(
            &sol,
            "the median trial of each run against the exact solution",
            &s,
        )?;
        println!("solutions: {}.png", sol.display());
    } else {
        println!("(no solutions plot: the runs solve different problems; pointwise errors only)");
    }
    // Each run's error against its own exact solution.
    let s: Vec<Series> = names
        .iter()
        .zip(&errors)
        .zip(&preds)
        .map(|((name, y), p)| Series {
            name,
            x: &p.x,
            y,
            style: SeriesStyle::Line,
        })
        .collect();
    let pw = PathBuf::from(format!("{}-pointwise-error", stem.display()));
    line_chart(
        &pw,
        &Axes {
            title: "pointwise error of the median trial of each run",
            x_label: "x",
            y_label: "|u − u_NN|",
            log_x: false,
            log_y: true,
        },
        &s,
    )?;
    println!("pointwise errors: {}.png", pw.display());
    Ok(())
}
