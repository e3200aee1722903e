//! `sweep status` and `sweep merge`: where the tasks stand; results.csv, plots and report.md.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::plan::{read_plan, Task};
use super::run::{done_dir, first_line, state, State, TaskRecord};
use super::shard::merge_shards;
use super::spec::SweepCommand;
use crate::output::write_atomic;
use crate::run::ntk::{loglog_fit, NtkRecord};

/// `sweep status`.
pub fn status(dir: &Path) -> Result<()> {
    let tasks = read_plan(dir)?;
    let (mut done, mut running, mut failed, mut pending) = (0, Vec::new(), Vec::new(), Vec::new());
    for t in &tasks {
        match state(dir, t.index) {
            State::Done => done += 1,
            State::Running(w) => running.push(format!("  task {} ({}): {w}", t.index, t.label())),
            State::Failed(e) => failed.push(format!(
                "  task {} ({}): {}",
                t.index,
                t.label(),
                first_line(&e)
            )),
            State::Pending => pending.push(t.index),
        }
    }
    println!("{}: {} tasks", dir.display(), tasks.len());
    println!("done     {done}");
    println!("running  {}", running.len());
    running.iter().for_each(|l| println!("{l}"));
    println!("failed   {}", failed.len());
    failed.iter().for_each(|l| println!("{l}"));
    println!("pending  {}", pending.len());
    if !pending.is_empty() {
        println!("  tasks {}", super::slurm::ranges(&pending));
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    let s =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&s).with_context(|| format!("{}", path.display()))
}

/// The order of the commands' result fields in results.csv (their structs' order); fields not
/// listed follow in name order.
#[rustfmt::skip]
const FIELD_ORDER: &[&str] = &[
    // ntk (NtkRecord)
    "eps", "nc", "nb", "np", "seed", "k_uu_fro", "k_uu_eig_top", "k_bb_fro", "k_fro",
    "k_eig_top", "k_uu_trace", "k_uu_max_entry", "k_uu_rank", "k_uu_cond_nonzero",
    "cond_nonzero", "train_final_loss", "scaling", "method",
    // train (TrainResult)
    "problem", "trials", "max_error_mean_network", "mean_variance", "rel_l2", "rel_linf",
    "max_error_vs_homogenized", "rel_l2_mean_network_vs_homogenized", "rel_l2_mean_network",
    "seeds", "final_loss", "iterations", "lbfgs_iterations", "lbfgs_evaluations",
    "trial_seconds", "schedule",
    // both
    "dtype", "engine", "seconds",
];

/// A result's scalar fields in [`FIELD_ORDER`], numeric lists of up to 16 as name_1, name_2, …;
/// nested objects, long lists (spectra) and nulls are left out.
fn flatten(v: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Value::Object(m) = v else { return out };
    let mut fields: Vec<(&String, &Value)> = m.iter().collect();
    let rank = |k: &str| {
        FIELD_ORDER
            .iter()
            .position(|f| *f == k)
            .unwrap_or(usize::MAX)
    };
    fields.sort_by_key(|(k, _)| rank(k));
    for (k, v) in fields {
        match v {
            Value::Array(a) if a.len() <= 16 && a.iter().all(Value::is_number) => {
                for (i, x) in a.iter().enumerate() {
                    out.push((format!("{k}_{}", i + 1), x.clone()));
                }
            }
            Value::Number(_) | Value::String(_) | Value::Bool(_) => {
                out.push((k.clone(), v.clone()))
            }
            _ => {}
        }
    }
    out
}

fn csv_cell(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One row of results.csv, and the numbers the plots need.
pub(super) struct Row {
    pub task: usize,
    pub grid: BTreeMap<String, Value>,
    pub fields: Vec<(String, Value)>,
    pub device: String,
}

impl Row {
    pub fn num(&self, name: &str) -> f64 {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_f64())
            .unwrap_or(f64::NAN)
    }
}

fn task_record(dir: &Path) -> Result<TaskRecord> {
    serde_json::from_value(read_json(&dir.join("task.json"))?)
        .with_context(|| format!("{}/task.json", dir.display()))
}

fn grid_json(t: &Task) -> BTreeMap<String, Value> {
    t.grid
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
        .collect()
}

/// The rows of every task (a sharded point is one row, its shards summed).
fn rows(dir: &Path, tasks: &[Task]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut shards: BTreeMap<usize, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        if let Some(s) = &t.shard {
            shards.entry(s.point).or_default().push(t);
            continue;
        }
        let d = done_dir(dir, t.index);
        let device = task_record(&d)?.device;
        let results: Vec<Value> = match t.command {
            SweepCommand::Ntk => match read_json(&d.join("ntk.json"))?.get("records") {
                Some(Value::Array(r)) => r.clone(),
                _ => bail!("{}/ntk.json has no records", d.display()),
            },
            SweepCommand::Train => vec![read_json(&d.join("result.json"))?],
        };
        for r in results {
            rows.push(Row {
                task: t.index,
                grid: grid_json(t),
                fields: flatten(&r),
                device: device.clone(),
            });
        }
    }
    for parts in shards.values() {
        let dirs: Vec<_> = parts.iter().map(|t| done_dir(dir, t.index)).collect();
        let refs: Vec<&Path> = dirs.iter().map(|p| p.as_path()).collect();
        let rec: NtkRecord = merge_shards(&refs)?;
        rows.push(Row {
            task: parts[0].index,
            grid: grid_json(parts[0]),
            fields: flatten(&serde_json::to_value(&rec)?),
            device: task_record(&dirs[0])?.device,
        });
    }
    rows.sort_by_key(|r| r.task);
    Ok(rows)
}

/// results.csv: task, the grid values under their option names, then the command's JSON fields
/// (a field whose name is also a grid option gets the suffix `_value`), then the device.
fn csv(rows: &[Row]) -> String {
    let grid_names: Vec<String> = rows
        .first()
        .map_or(Vec::new(), |r| r.grid.keys().cloned().collect());
    let mut fields: Vec<String> = Vec::new();
    for r in rows {
        for (k, _) in &r.fields {
            if !fields.contains(k) {
                fields.push(k.clone());
            }
        }
    }
    let col = |k: &String| {
        if grid_names.contains(k) || k == "task" || k == "device" {
            format!("{k}_value")
        } else {
            k.clone()
        }
    };
    let mut header = vec!["task".to_string()];
    header.extend(grid_names.iter().cloned());
    header.extend(fields.iter().map(col));
    header.push("device".into());
    let mut s = header.join(",") + "\n";
    for r in rows {
        let mut cells = vec![r.task.to_string()];
        cells.extend(
            grid_names
                .iter()
                .map(|g| csv_cell(r.grid.get(g).unwrap_or(&Value::Null))),
        );
        for f in &fields {
            let v = r.fields.iter().find(|(k, _)| k == f).map(|(_, v)| v);
            cells.push(csv_cell(v.unwrap_or(&Value::Null)));
        }
        cells.push(csv_cell(&Value::String(r.device.clone())));
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

/// Mean of `y` per (group, x), sorted by x: one line per group.
pub(super) fn lines(
    rows: &[Row],
    group: &dyn Fn(&Row) -> String,
    x: &str,
    y: &str,
) -> BTreeMap<String, (Vec<f64>, Vec<f64>)> {
    let mut acc: BTreeMap<String, BTreeMap<u64, (f64, f64, usize)>> = BTreeMap::new();
    for r in rows {
        let (xv, yv) = (r.num(x), r.num(y));
        if !(xv.is_finite() && yv.is_finite()) {
            continue;
        }
        let e = acc
            .entry(group(r))
            .or_default()
            .entry(xv.to_bits())
            .or_insert((xv, 0.0, 0));
        e.1 += yv;
        e.2 += 1;
    }
    acc.into_iter()
        .map(|(g, pts)| {
            let mut p: Vec<(f64, f64)> =
                pts.values().map(|(x, s, n)| (*x, s / *n as f64)).collect();
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            (g, p.into_iter().unzip())
        })
        .collect()
}

/// Log–log slope: the least-squares fit with ≥ 3 points, the two-point slope with 2.
pub(super) fn slope(x: &[f64], y: &[f64]) -> Option<f64> {
    if let Some(f) = loglog_fit("", x, y) {
        return Some(f.slope);
    }
    (x.len() == 2 && x[0] > 0.0 && x[1] > 0.0 && y[0] > 0.0 && y[1] > 0.0 && x[0] != x[1])
        .then(|| (y[1] / y[0]).ln() / (x[1] / x[0]).ln())
}

/// `sweep merge`: results.csv, plots and report.md in DIR.
pub fn merge(dir: &Path) -> Result<()> {
    let tasks = read_plan(dir)?;
    let missing: Vec<usize> = tasks
        .iter()
        .map(|t| t.index)
        .filter(|&i| !done_dir(dir, i).is_dir())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} of {} tasks are not done (tasks {}); `mspinn sweep status {}` says why",
            missing.len(),
            tasks.len(),
            super::slurm::ranges(&missing),
            dir.display()
        );
    }
    let Some(command) = tasks.first().map(|t| t.command) else {
        bail!("the plan has no tasks")
    };
    let rows = rows(dir, &tasks)?;
    write_atomic(&dir.join("results.csv"), csv(&rows).as_bytes())?;
    let mut report = format!(
        "# Sweep {}\n\n`mspinn {}`, {} tasks, {} result rows; total task time {:.1} s.\n\n",
        dir.display(),
        command.name(),
        tasks.len(),
        rows.len(),
        rows.iter()
            .map(|r| r.num("seconds"))
            .filter(|s| s.is_finite())
            .sum::<f64>()
    );
    let mut body = String::new();
    let plotted = super::plots::plot(dir, command, &rows, &mut body)?;
    report.push_str("Files: results.csv (one row per task)");
    for p in &plotted {
        report.push_str(&format!(", {p}.svg/.png"));
    }
    report.push_str(".\n");
    report.push_str(&body);
    write_atomic(&dir.join("report.md"), report.as_bytes())?;
    println!(
        "merged {} tasks into {}/results.csv ({} rows){}",
        tasks.len(),
        dir.display(),
        rows.len(),
        if plotted.is_empty() {
            String::new()
        } else {
            format!(", plots: {}", plotted.join(", "))
        }
    );
    print!("{}", report.split_once("\n\n").map_or("", |(_, r)| r));
    Ok(())
}
