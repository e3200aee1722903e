//! The plots of a merged sweep and their part of report.md: for `ntk`, ‖K_uu‖_F and λ1 against ε
//! (log–log, one line per N_c, with the fitted slope) and the time against N_c per device; for
//! `train`, the error against ε per N_c.

use std::path::Path;

use anyhow::Result;

use super::merge::{lines, slope, Row};
use super::spec::SweepCommand;
use crate::plot::{line_chart, Axes, Series, SeriesStyle};

type Lines = std::collections::BTreeMap<String, (Vec<f64>, Vec<f64>)>;

/// One chart of several quantities' lines; returns the slope of each line.
fn chart(
    path: &Path,
    axes: &Axes,
    sets: &[(&str, &Lines, SeriesStyle)],
    fit: bool,
) -> Result<Vec<(String, String, Option<f64>)>> {
    let mut names = Vec::new();
    for (q, ls, _) in sets {
        for (g, (x, y)) in ls.iter() {
            let s = if fit { slope(x, y) } else { None };
            names.push((q.to_string(), g.clone(), s));
        }
    }
    let labels: Vec<String> = names
        .iter()
        .map(|(q, g, s)| match s {
            Some(s) => format!("{q}, {g} (slope {s:.2})"),
            None => format!("{q}, {g}"),
        })
        .collect();
    let mut series = Vec::new();
    let mut k = 0;
    for (_, ls, style) in sets {
        for (x, y) in ls.values() {
            series.push(Series {
                name: &labels[k],
                x,
                y,
                style: *style,
            });
            k += 1;
        }
    }
    line_chart(path, axes, &series)?;
    Ok(names)
}

fn distinct(rows: &[Row], f: &str) -> usize {
    let mut v: Vec<u64> = rows.iter().map(|r| r.num(f).to_bits()).collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// The line a row belongs to: its N_c when N_c is a grid option, else one line for all.
fn nc_group(r: &Row) -> String {
    let v = |k: &str| {
        r.grid
            .get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    if let Some(nc) = v("nc") {
        format!("N_c = {nc}")
    } else if let Some(c) = v("nc-eps2") {
        format!("N_c = ⌈{c}·ε⁻²⌉")
    } else {
        "all tasks".into()
    }
}

/// Writes the plots that fit `command` into `dir`, appends their findings to `report`, and
/// returns the plots' stems.
pub(super) fn plot(
    dir: &Path,
    command: SweepCommand,
    rows: &[Row],
    report: &mut String,
) -> Result<Vec<String>> {
    let mut stems = Vec::new();
    let mut text = String::new();
    match command {
        SweepCommand::Ntk => {
            if distinct(rows, "eps") >= 2 {
                let fro = lines(rows, &nc_group, "eps", "k_uu_fro");
                let lam = lines(rows, &nc_group, "eps", "k_uu_eig_top_1");
                let fits = chart(
                    &dir.join("ntk_scaling"),
                    &Axes {
                        title: "NTK against ε (mean over the other grid values)",
                        x_label: "ε",
                        y_label: "K_uu",
                        log_x: true,
                        log_y: true,
                    },
                    &[
                        ("‖K_uu‖_F", &fro, SeriesStyle::LinePoints),
                        ("λ1", &lam, SeriesStyle::Dashed),
                    ],
                    true,
                )?;
                stems.push("ntk_scaling".to_string());
                text.push_str(
                    "\n## Scaling with ε\n\n| quantity | line | slope in ε |\n|---|---|---|\n",
                );
                for (q, g, s) in fits {
                    let s = s.map_or("–".into(), |s| format!("{s:.3}"));
                    text.push_str(&format!("| {q} | {g} | {s} |\n"));
                }
            }
            if distinct(rows, "nc") >= 2 {
                let t = lines(rows, &|r: &Row| r.device.clone(), "nc", "seconds");
                chart(
                    &dir.join("ntk_seconds"),
                    &Axes {
                        title: "NTK time against N_c, per device",
                        x_label: "N_c",
                        y_label: "seconds",
                        log_x: true,
                        log_y: true,
                    },
                    &[("seconds", &t, SeriesStyle::LinePoints)],
                    true,
                )?;
                stems.push("ntk_seconds".to_string());
            }
            text.push_str("\n## Results\n\n| task | ε | N_c | seed | ‖K_uu‖_F | λ1 | seconds | device |\n|---|---|---|---|---|---|---|---|\n");
            for r in rows {
                text.push_str(&format!(
                    "| {} | {:.6} | {} | {} | {:.6e} | {:.6e} | {:.3} | {} |\n",
                    r.task,
                    r.num("eps"),
                    r.num("nc"),
                    r.num("seed"),
                    r.num("k_uu_fro"),
                    r.num("k_uu_eig_top_1"),
                    r.num("seconds"),
                    r.device
                ));
            }
        }
        SweepCommand::Train => {
            if distinct(rows, "eps") >= 2 {
                let e = lines(rows, &nc_group, "eps", "max_error_mean_network");
                chart(
                    &dir.join("train_error"),
                    &Axes {
                        title: "max |u − E u_NN| against ε",
                        x_label: "ε",
                        y_label: "error",
                        log_x: true,
                        log_y: true,
                    },
                    &[("error", &e, SeriesStyle::LinePoints)],
                    true,
                )?;
                stems.push("train_error".to_string());
            }
            text.push_str("\n## Results\n\n| task | ε | N_c | max abs error | rel L2 (trial 1) | seconds | device |\n|---|---|---|---|---|---|---|\n");
            for r in rows {
                text.push_str(&format!(
                    "| {} | {:.6} | {} | {:.4e} | {:.4e} | {:.1} | {} |\n",
                    r.task,
                    r.num("eps"),
                    r.num("nc"),
                    r.num("max_error_mean_network"),
                    r.num("rel_l2_1"),
                    r.num("seconds"),
                    r.device
                ));
            }
        }
    }
    report.push_str(&text);
    report.push('\n');
    Ok(stems)
}
