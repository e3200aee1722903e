//! Running tasks: one in-process (`sweep run`, what a Slurm array task calls), or all pending ones
//! on this machine (`sweep local`).
//!
//! A task writes into DIR/tasks/I.tmp-<pid> and renames that folder to DIR/tasks/I when it is
//! complete, so a task killed half-way leaves nothing that looks done. DIR/tasks/I exists ⇔ the
//! task is done, and a done task is never run again. A failure writes DIR/tasks/I.failed (the
//! error) and removes its temporary folder; a rerun retries it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use mspinn_train::{LbfgsOptions, TrainOptions};
use serde::{Deserialize, Serialize};

use super::plan::{read_plan, tasks_dir, Task};
use super::shard::run_shard;
use super::spec::{parse_ntk, parse_train, SweepCommand};
use crate::device::{device_name, parse_device};
use crate::output::write_json;
use crate::run::ntk::{compute, write_outputs};
use crate::run::run_trials;

/// DIR/tasks/I/task.json: what ran, where and how long.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskRecord {
    pub index: usize,
    pub label: String,
    pub args: Vec<String>,
    pub device: String,
    pub host: String,
    pub pid: u32,
    pub seconds: f64,
}

/// DIR/tasks/I.tmp-<pid>/claim.json: who is running a task.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Claim {
    host: String,
    pid: u32,
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

pub fn done_dir(dir: &Path, i: usize) -> PathBuf {
    tasks_dir(dir).join(i.to_string())
}

pub fn failed_file(dir: &Path, i: usize) -> PathBuf {
    tasks_dir(dir).join(format!("{i}.failed"))
}

/// Where a task stands.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    Done,
    /// Running on this host (pid) or on another one.
    Running(String),
    /// The error text.
    Failed(String),
    Pending,
}

/// The temporary folders of task `i`, with their claims.
fn tmp_dirs(dir: &Path, i: usize) -> Vec<(PathBuf, Option<Claim>)> {
    let prefix = format!("{i}.tmp-");
    let Ok(rd) = std::fs::read_dir(tasks_dir(dir)) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| {
            let claim = std::fs::read_to_string(e.path().join("claim.json"))
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok());
            (e.path(), claim)
        })
        .collect()
}

/// Whether a claim's process is still alive (only knowable on its own host: another host's
/// claim counts as alive).
fn alive(c: &Claim) -> bool {
    c.host != hostname() || Path::new(&format!("/proc/{}", c.pid)).exists()
}

pub fn state(dir: &Path, i: usize) -> State {
    if done_dir(dir, i).is_dir() {
        return State::Done;
    }
    for (_, claim) in tmp_dirs(dir, i) {
        if let Some(c) = claim.filter(alive) {
            return State::Running(format!("{} pid {}", c.host, c.pid));
        }
    }
    match std::fs::read_to_string(failed_file(dir, i)) {
        Ok(e) => State::Failed(e),
        Err(_) => State::Pending,
    }
}

/// What [`run_task`] did.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Ran,
    AlreadyDone,
}

/// Runs task `i` of the plan in DIR in this process, unless it is done.
pub fn run_task(dir: &Path, tasks: &[Task], i: usize) -> Result<Outcome> {
    let Some(task) = tasks.get(i) else {
        bail!(
            "task {i}: the plan has {} tasks (0..{})",
            tasks.len(),
            tasks.len()
        );
    };
    let done = done_dir(dir, i);
    if done.is_dir() {
        return Ok(Outcome::AlreadyDone);
    }
    let tdir = tasks_dir(dir);
    std::fs::create_dir_all(&tdir).with_context(|| format!("cannot create {}", tdir.display()))?;
    // Leftovers of killed runs on this host (and of this process) go.
    for (path, claim) in tmp_dirs(dir, i) {
        if claim.is_none_or(|c| !alive(&c) || c.pid == std::process::id()) {
            std::fs::remove_dir_all(&path).ok();
        }
    }
    let failed = failed_file(dir, i);
    std::fs::remove_file(&failed).ok();
    let tmp = tdir.join(format!("{i}.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let claim = Claim {
        host: hostname(),
        pid: std::process::id(),
    };
    write_json(&tmp.join("claim.json"), &claim)?;
    let start = Instant::now();
    let result = execute(task, &tmp).and_then(|device| {
        let record = TaskRecord {
            index: i,
            label: task.label(),
            args: task.args.clone(),
            device,
            host: claim.host.clone(),
            pid: claim.pid,
            seconds: start.elapsed().as_secs_f64(),
        };
        write_json(&tmp.join("task.json"), &record)?;
        std::fs::remove_file(tmp.join("claim.json")).ok();
        Ok(())
    });
    match result {
        Ok(()) => match std::fs::rename(&tmp, &done) {
            Ok(()) => Ok(Outcome::Ran),
            Err(_) if done.is_dir() => {
                // Another runner finished the same task first; its result stands.
                std::fs::remove_dir_all(&tmp).ok();
                Ok(Outcome::AlreadyDone)
            }
            Err(e) => Err(e).with_context(|| format!("cannot rename to {}", done.display())),
        },
        Err(e) => {
            let text = format!("{e:#}\n");
            std::fs::write(&failed, text)
                .with_context(|| format!("cannot write {}", failed.display()))?;
            std::fs::remove_dir_all(&tmp).ok();
            Err(e.context(format!("task {i} ({})", task.label())))
        }
    }
}

/// Runs a task into `out`; returns the device's name.
fn execute(task: &Task, out: &Path) -> Result<String> {
    match task.command {
        SweepCommand::Ntk => {
            let mut a = parse_ntk(&task.args)?;
            a.out = None;
            a.json = false;
            a.quiet.quiet = true;
            let mut req = a.request()?;
            req.progress = false;
            req.save_matrix = a.save_matrix.then(|| out.to_path_buf());
            let device = device_name(&req.device);
            match &task.shard {
                Some(shard) => run_shard(&req, shard, out)?,
                None => write_outputs(out, &compute(&req)?)?,
            }
            Ok(device)
        }
        SweepCommand::Train => {
            let mut a = parse_train(&task.args)?;
            a.out = out.to_path_buf();
            a.quiet.quiet = true;
            // As `mspinn train` runs it (log and checkpoint intervals travel in the spec), into
            // the task's fresh temporary folder.
            let (spec, out, mode) = a.spec()?;
            let device = parse_device(&a.device.device)?;
            let opts = TrainOptions {
                lbfgs: LbfgsOptions::default(),
                engine: a.engine.config(),
                ..Default::default()
            };
            run_trials(&spec, &device, &out, mode, a.jobs, opts, None)?;
            Ok(device_name(&device))
        }
    }
}

/// The task index of an array job: `SLURM_ARRAY_TASK_ID` (Slurm) or `JOB_COMPLETION_INDEX`
/// (a Kubernetes Indexed Job).
pub fn index_from_env() -> Result<usize> {
    for var in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
        if let Ok(v) = std::env::var(var) {
            return v
                .trim()
                .parse()
                .with_context(|| format!("{var}={v:?} is not a task index"));
        }
    }
    bail!("give --task I (or run as a Slurm array task / Kubernetes Indexed Job)")
}

/// `sweep run`: one task.
pub fn run_one(dir: &Path, task: Option<usize>) -> Result<()> {
    let tasks = read_plan(dir)?;
    let i = match task {
        Some(i) => i,
        None => index_from_env()?,
    };
    match run_task(dir, &tasks, i)? {
        Outcome::Ran => println!("task {i} done ({})", tasks[i].label()),
        Outcome::AlreadyDone => println!("task {i} was already done; not rerun"),
    }
    Ok(())
}

/// The first line of an error text.
pub fn first_line(e: &str) -> &str {
    e.lines().next().unwrap_or("")
}

/// `sweep local`: every task that is not done, `jobs` at a time.
pub fn run_local(dir: &Path, jobs: usize) -> Result<()> {
    let tasks = read_plan(dir)?;
    let pending: Vec<usize> = (0..tasks.len())
        .filter(|&i| !done_dir(dir, i).is_dir())
        .collect();
    let jobs = jobs.clamp(1, pending.len().max(1));
    println!(
        "{} tasks: {} done, {} to run, {jobs} at a time",
        tasks.len(),
        tasks.len() - pending.len(),
        pending.len()
    );
    let start = Instant::now();
    let bar = ProgressBar::new(pending.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("sweep [{bar:30}] {pos}/{len} eta {eta} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let next = Mutex::new(0usize);
    let failures: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let k = {
                    let mut n = next.lock().expect("task queue");
                    *n += 1;
                    *n - 1
                };
                let Some(&i) = pending.get(k) else { return };
                bar.set_message(tasks[i].label());
                if let Err(e) = run_task(dir, &tasks, i) {
                    let text = format!("{e:#}");
                    failures.lock().expect("failures").push((i, text));
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let mut failures = failures.into_inner().expect("failures");
    failures.sort_by_key(|f| f.0);
    println!(
        "ran {} tasks in {:.1} s: {} done, {} failed",
        pending.len(),
        start.elapsed().as_secs_f64(),
        pending.len() - failures.len(),
        failures.len()
    );
    for (i, e) in &failures {
        println!("  task {i}: {}", first_line(e));
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} tasks failed (their errors are in {}/I.failed; a rerun retries them)",
            failures.len(),
            pending.len(),
            tasks_dir(dir).display()
        );
    }
    Ok(())
}
