//! A plan: the resolved tasks of a spec, one JSON line each in DIR/plan.jsonl, beside a copy of
//! the spec (DIR/spec.toml). Planning parses every task with its command's own parser and builds
//! its typed run value, so a bad value fails here, naming the task, before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::spec::{parse_ntk, parse_train, Scalar, SweepCommand, SweepSpec};
use crate::output::write_atomic;
use crate::run::ntk::{NcRule, NtkRequest};

/// One task of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub index: usize,
    pub command: SweepCommand,
    /// The grid values of this task, by option name.
    pub grid: BTreeMap<String, Scalar>,
    /// The command's arguments (after `mspinn ntk` / `mspinn train`).
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

/// The collocation rows one shard task accumulates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    /// The grid point this shard belongs to (its shards are merged in `part` order).
    pub point: usize,
    pub part: usize,
    pub parts: usize,
    pub start: usize,
    pub end: usize,
    /// N_c of the whole point.
    pub nc: usize,
}

impl Task {
    /// "eps = 1/16, nc = 256" (and "shard 2/4").
    pub fn label(&self) -> String {
        let mut s: Vec<String> = self
            .grid
            .iter()
            .map(|(k, v)| format!("{k} = {}", v.arg()))
            .collect();
        if let Some(sh) = &self.shard {
            s.push(format!("shard {}/{}", sh.part + 1, sh.parts));
        }
        s.join(", ")
    }
}

/// The ε and N_c of an NTK request that measures exactly one point (what a shard needs).
pub fn single_point(r: &NtkRequest) -> Result<(f64, usize)> {
    if r.eps.len() != 1 {
        bail!("a sharded NTK task needs one ε, got {}", r.eps.len());
    }
    let eps = r.eps[0];
    let nc = match &r.nc {
        NcRule::List(l) if l.len() == 1 => l[0],
        NcRule::List(l) => bail!("a sharded NTK task needs one N_c, got {}", l.len()),
        NcRule::EpsSquared(c) => (c / (eps * eps)).ceil() as usize,
    };
    if r.seeds != 1 {
        bail!("a sharded NTK task needs --seeds 1");
    }
    if r.train.is_some() {
        bail!("a sharded NTK task cannot --train (every shard would train its own copy)");
    }
    if matches!(r.options.method, mspinn_ntk::Method::Dense) {
        bail!("a sharded NTK is a sum of Gram matrices: --method dense does not shard");
    }
    Ok((eps, nc))
}

/// Resolves every task of `spec`.
pub fn plan(spec: &SweepSpec) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    for (point, values) in spec.points().into_iter().enumerate() {
        let args = spec.args(&values);
        let grid: BTreeMap<String, Scalar> = values.into_iter().collect();
        let label = grid
            .iter()
            .map(|(k, v)| format!("{k} = {}", v.arg()))
            .collect::<Vec<_>>()
            .join(", ");
        let ctx = || format!("grid point {point} ({label})");
        let mut shards = vec![None];
        match spec.command {
            SweepCommand::Ntk => {
                let req = parse_ntk(&args)
                    .and_then(|a| a.request())
                    .with_context(ctx)?;
                if let Some(rows) = spec.shard_rows {
                    let (_, nc) = single_point(&req).with_context(ctx)?;
                    let parts = nc.div_ceil(rows).max(1);
                    shards = (0..parts)
                        .map(|part| {
                            Some(Shard {
                                point,
                                part,
                                parts,
                                start: part * rows,
                                end: ((part + 1) * rows).min(nc),
                                nc,
                            })
                        })
                        .collect();
                }
            }
            SweepCommand::Train => {
                parse_train(&args)
                    .and_then(|a| a.spec())
                    .with_context(ctx)?;
            }
        }
        for shard in shards {
            tasks.push(Task {
                index: tasks.len(),
                command: spec.command,
                grid: grid.clone(),
                args: args.clone(),
                shard,
            });
        }
    }
    Ok(tasks)
}

/// The plan as JSON lines.
pub fn to_jsonl(tasks: &[Task]) -> Result<String> {
    let mut s = String::new();
    for t in tasks {
        s.push_str(&serde_json::to_string(t)?);
        s.push('\n');
    }
    Ok(s)
}

/// Writes DIR/plan.jsonl and DIR/spec.toml. A folder that already holds the same plan is left
/// as it is (its finished tasks stay finished); one that holds a different plan is an error.
pub fn write_plan(spec_path: &Path, out: &Path) -> Result<Vec<Task>> {
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("cannot read {}", spec_path.display()))?;
    let spec = SweepSpec::parse(&text).with_context(|| format!("{}", spec_path.display()))?;
    let tasks = plan(&spec)?;
    let jsonl = to_jsonl(&tasks)?;
    let plan_path = out.join("plan.jsonl");
    if let Ok(old) = std::fs::read_to_string(&plan_path) {
        if old != jsonl {
            bail!(
                "{} already holds a different plan; give another --out or remove it",
                out.display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(&out.join("spec.toml"), text.as_bytes())?;
    write_atomic(&plan_path, jsonl.as_bytes())?;
    Ok(tasks)
}

/// Reads DIR/plan.jsonl.
pub fn read_plan(dir: &Path) -> Result<Vec<Task>> {
    let path = dir.join("plan.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (make a plan with `mspinn sweep plan SPEC --out DIR`)",
            path.display()
        )
    })?;
    let mut tasks = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let t: Task = serde_json::from_str(line)
            .with_context(|| format!("{} line {}", path.display(), i + 1))?;
        if t.index != tasks.len() {
            bail!(
                "{} line {}: task index {} out of order",
                path.display(),
                i + 1,
                t.index
            );
        }
        tasks.push(t);
    }
    Ok(tasks)
}

/// DIR/tasks.
pub fn tasks_dir(dir: &Path) -> PathBuf {
    dir.join("tasks")
}
