//! What a finished run leaves besides result.json: predictions.csv and the solution, error,
//! loss and error-history plots.

use std::path::Path;

use anyhow::Result;
use mspinn_problem::Problem;
use mspinn_train::metrics::mean_network;

use super::history::read_history;
use super::trials::TrialOutput;
use crate::output::write_columns;
use crate::plot::{line_chart, solution_chart, Axes, Series, SeriesStyle};

pub fn write_predictions(
    dir: &Path,
    grid: &[f64],
    exact: &[f64],
    ubar: Option<&[f64]>,
    preds: &[Vec<f64>],
) -> Result<()> {
    let mean = mean_network(preds);
    let nan = vec![f64::NAN; grid.len()];
    let mut names = vec!["x".to_string(), "u".into(), "u_bar".into(), "mean".into()];
    let mut cols: Vec<&[f64]> = vec![grid, exact, ubar.unwrap_or(&nan), &mean];
    for (k, p) in preds.iter().enumerate() {
        names.push(format!("trial_{k}"));
        cols.push(p);
    }
    let nr: Vec<&str> = names.iter().map(String::as_str).collect();
    write_columns(&dir.join("predictions.csv"), &nr, &cols)
}

pub fn plot_run(
    dir: &Path,
    problem: &Problem,
    grid: &[f64],
    exact: &[f64],
    ubar: Option<&[f64]>,
    preds: &[Vec<f64>],
    done: &[TrialOutput],
) -> Result<()> {
    let mean = mean_network(preds);
    let title = format!("{}: exact, mean network and trials", problem.name);
    let names: Vec<String> = (0..preds.len()).map(|k| format!("trial {k}")).collect();
    let mut s = vec![
        Series {
            name: "exact u",
            x: grid,
            y: exact,
            style: SeriesStyle::Line,
        },
        Series {
            name: "mean network",
            x: grid,
            y: &mean,
            style: SeriesStyle::Dashed,
        },
    ];
    if let Some(ub) = ubar {
        s.push(Series {
            name: "homogenised ū",
            x: grid,
            y: ub,
            style: SeriesStyle::Dashed,
        });
    }
    for (k, p) in preds.iter().enumerate().take(10) {
        s.push(Series {
            name: &names[k],
            x: grid,
            y: p,
            style: SeriesStyle::Line,
        });
    }
    solution_chart(&dir.join("solution"), &title, &s)?;
    let err_mean: Vec<f64> = mean.iter().zip(exact).map(|(a, b)| (a - b).abs()).collect();
    let errs: Vec<Vec<f64>> = preds
        .iter()
        .map(|p| p.iter().zip(exact).map(|(a, b)| (a - b).abs()).collect())
        .collect();
    let mut s = vec![Series {
        name: "|u − mean network|",
        x: grid,
        y: &err_mean,
        style: SeriesStyle::Line,
    }];
    for (k, e) in errs.iter().enumerate().take(10) {
        s.push(Series {
            name: &names[k],
            x: grid,
            y: e,
            style: SeriesStyle::Line,
        });
    }
    line_chart(
        &dir.join("error"),
        &Axes {
            title: "pointwise error",
            x_label: "x",
            y_label: "|error|",
            log_x: false,
            log_y: true,
        },
        &s,
    )?;
    let curves: Vec<(Vec<f64>, Vec<f64>)> = done
        .iter()
        .map(|d| {
            (
                d.1.rows.iter().map(|r| r.iteration as f64 + 1.0).collect(),
                d.1.rows.iter().map(|r| r.loss).collect(),
            )
        })
        .collect();
    let s: Vec<Series> = curves
        .iter()
        .enumerate()
        .take(10)
        .map(|(k, c)| Series {
            name: &names[k],
            x: &c.0,
            y: &c.1,
            style: SeriesStyle::Line,
        })
        .collect();
    plot_history(dir, done.len())?;
    line_chart(
        &dir.join("loss"),
        &Axes {
            title: "training loss",
            x_label: "iteration + 1",
            y_label: "loss",
            log_x: false,
            log_y: true,
        },
        &s,
    )?;
    Ok(())
}

/// error_history.{png,svg}: each trial's relative L∞ error against iteration.
fn plot_history(dir: &Path, trials: usize) -> Result<()> {
    let mut curves = Vec::new();
    for k in 0..trials {
        let h = read_history(&dir.join(format!("trial-{k:03}")).join("history.csv"))?;
        curves.push((
            format!("trial {k}"),
            h.iter().map(|r| r.iteration as f64).collect::<Vec<_>>(),
            h.iter().map(|r| r.rel_linf).collect::<Vec<_>>(),
        ));
    }
    let s: Vec<Series> = curves
        .iter()
        .take(10)
        .map(|c| Series {
            name: &c.0,
            x: &c.1,
            y: &c.2,
            style: SeriesStyle::Line,
        })
        .collect();
    line_chart(
        &dir.join("error_history"),
        &Axes {
            title: "relative L∞ error against the reference solution",
            x_label: "iteration",
            y_label: "max|u − u_NN| / max|u|",
            log_x: false,
            log_y: true,
        },
        &s,
    )
}
