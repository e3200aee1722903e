//! The training loop: one code path for every problem kind and device.
//!
//! A schedule's Adam phases each start with fresh moments (DeepXDE, which the paper used,
//! recompiles the model and so re-creates Adam for every learning rate); L-BFGS phases run in f64
//! on the flat parameter vector; `lm` / `gn` phases take Levenberg–Marquardt or Gauss–Newton steps
//! from the residual Jacobian ([`crate::lm`]) and log a row every `log_every` of their iterations
//! with μ in the `lr` column. Loss terms are checked every iteration: the first non-finite one
//! stops the run with its iteration, and the last checkpoint written (always from a finite loss)
//! stays on disk. A second-order or L-BFGS phase is atomic: `stop_after` and resume act between
//! phases there.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use mspinn_model::{LossTerms, Mlp, ResidualSet};
use serde::{Deserialize, Serialize};

use crate::adam::StepGradient;
use crate::checkpoint::{self, LoopPosition};
use crate::lbfgs::{run_lbfgs, LbfgsOptions, LbfgsOutcome};
use crate::lm::{run_gn, run_lm, LmOptions, LmOutcome};
use crate::{Adam, Phase, Result, Schedule, TrainError};

/// How the loop reports progress.
#[derive(Clone, Default)]
pub enum Progress {
    /// No output at all (scripts, tests).
    #[default]
    Quiet,
    /// Drive this bar (length = total iterations of the schedule).
    Bar(ProgressBar),
}

#[derive(Clone)]
pub struct TrainOptions {
    /// Log loss terms every this many iterations (and at the end of each phase).
    pub log_every: u64,
    /// Write a checkpoint every this many iterations (0: only at the start and the end).
    pub checkpoint_every: u64,
    /// Run folder for metrics.csv and checkpoints/; None keeps everything in memory.
    pub run_dir: Option<PathBuf>,
    pub progress: Progress,
    pub lbfgs: LbfgsOptions,
    /// Settings of `lm` and `gn` phases (their iteration cap comes from the schedule).
    pub lm: LmOptions,
    /// Stop (as if interrupted) after this many global iterations: for resume tests.
    pub stop_after: Option<u64>,
    /// Called with (global iteration, seconds as in metrics.csv, network) whenever a phase logs (Adam and LM/GN every
    /// `log_every` iterations and at the phase end; L-BFGS for its accepted iterates every
    /// `log_every` iterations, after the phase), e.g. to record the error against the reference
    /// solution or its spectrum for the frequency-principle experiment.
    pub on_log: Option<OnLog>,
}

/// See [`TrainOptions::on_log`].
pub type OnLog = Arc<dyn Fn(u64, f64, &Mlp) + Send + Sync>;

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            log_every: 100,
            checkpoint_every: 1000,
            run_dir: None,
            progress: Progress::Quiet,
            lbfgs: LbfgsOptions::default(),
            lm: LmOptions::default(),
            stop_after: None,
            on_log: None,
        }
    }
}

/// One line of metrics.csv.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LogRow {
    pub iteration: u64,
    pub phase: usize,
    pub optimizer: String,
    pub lr: f64,
    pub loss: f64,
    pub loss_pde: f64,
    pub loss_bc: f64,
    pub seconds: f64,
}

impl LogRow {
    pub const CSV_HEADER: &'static str =
        "iteration,phase,optimizer,lr,loss,loss_pde,loss_bc,seconds";
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{:e},{:e},{:e},{:e},{:.3}",
            self.iteration,
            self.phase,
            self.optimizer,
            self.lr,
            self.loss,
            self.loss_pde,
            self.loss_bc,
            self.seconds
        )
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOutcome {
    pub rows: Vec<LogRow>,
    pub final_loss: LossTerms,
    pub iterations: u64,
    pub lbfgs: Vec<LbfgsOutcome>,
    /// One entry per `lm` / `gn` phase, with its per-iteration μ, step norm and time.
    #[serde(default)]
    pub second_order: Vec<LmOutcome>,
    /// Wall seconds of training, over every resume of the run (the clock continues).
    pub seconds: f64,
    /// False when `stop_after` cut the run short.
    pub completed: bool,
}

pub struct Trainer<'a> {
    pub mlp: &'a Mlp,
    pub set: &'a ResidualSet,
    pub schedule: &'a Schedule,
    pub opts: TrainOptions,
}

impl<'a> Trainer<'a> {
    pub fn new(
        mlp: &'a Mlp,
        set: &'a ResidualSet,
        schedule: &'a Schedule,
        opts: TrainOptions,
    ) -> Self {
        Self {
            mlp,
            set,
            schedule,
            opts,
        }
    }

    fn checkpoint_dir(&self) -> Option<PathBuf> {
        self.opts.run_dir.as_ref().map(|d| d.join("checkpoints"))
    }

    fn append_rows(&self, rows: &[LogRow]) -> Result<()> {
        let Some(dir) = &self.opts.run_dir else {
            return Ok(());
        };
        let path = dir.join("metrics.csv");
        let io = |source| TrainError::Io {
            path: path.display().to_string(),
            source,
        };
        let fresh = !path.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut text = String::new();
        if fresh {
            text.push_str(LogRow::CSV_HEADER);
            text.push('\n');
        }
        for r in rows {
            text.push_str(&r.csv());
            text.push('\n');
        }
        f.write_all(text.as_bytes()).map_err(io)?;
        Ok(())
    }

    /// Runs the schedule from the start, or from the checkpoint in the run folder if `resume`.
    pub fn run(&self, resume: bool) -> Result<TrainOutcome> {
        let vars = self.mlp.vars();
        let seed = self.mlp.config().seed;
        let sched_str = self.schedule.to_string();
        let mut pos = LoopPosition {
            phase: 0,
            iter_in_phase: 0,
            global_iter: 0,
            adam_t: 0,
            schedule: sched_str.clone(),
            seed,
            seconds: 0.0,
        };
        let mut adam = Adam::new(vars.clone())?;
        if let (true, Some(dir)) = (resume, self.checkpoint_dir()) {
            let ck = checkpoint::load(&dir, self.mlp)?;
            // The checkpoint's schedule must be this one or a prefix of it (phases appended).
            let extended = ck
                .position
                .schedule
                .parse::<Schedule>()
                .is_ok_and(|earlier| self.schedule.extends(&earlier));
            if !extended {
                return Err(TrainError::Checkpoint {
                    path: dir.display().to_string(),
                    reason: format!(
                        "it was written under schedule {:?}, this run asks for {:?} \
                         (a resume may only append phases)",
                        ck.position.schedule, sched_str
                    ),
                });
            }
            pos = ck.position;
            // Later checkpoints belong to the (possibly extended) schedule of this run.
            pos.schedule = sched_str.clone();
            if pos.seconds == 0.0 {
                pos.seconds = self.seconds_logged_up_to(pos.global_iter).unwrap_or(0.0);
            }
            if let Some(state) = ck.adam {
                adam = Adam::with_state(vars.clone(), state)?;
            }
        } else if let Some(dir) = &self.opts.run_dir {
            // A fresh run starts a fresh metrics file.
            let _ = std::fs::remove_file(dir.join("metrics.csv"));
        }
        let start = Clock::continuing(pos.seconds);
        let ckdir = self.checkpoint_dir();
        let mut last_ck = String::from("(none: no run folder)");
        let save_ck = |adam: &Adam, pos: &LoopPosition, last: &mut String| -> Result<()> {
            if let Some(dir) = &ckdir {
                let pos = LoopPosition {
                    seconds: start.elapsed().as_secs_f64(),
                    ..pos.clone()
                };
                *last = checkpoint::save(dir, self.mlp, &adam.state()?, &pos)?
                    .display()
                    .to_string();
            }
            Ok(())
        };
        let bar = match &self.opts.progress {
            Progress::Bar(b) => Some(b.clone()),
            Progress::Quiet => None,
        };
        if let Some(b) = &bar {
            b.set_length(self.schedule.total_iters());
            b.set_position(pos.global_iter);
        }
        let mut rows = Vec::new();
        let mut lbfgs_out = Vec::new();
        let mut second_order = Vec::new();
        let mut terms = LossTerms::default();
        let log_every = self.opts.log_every.max(1);
        // The gradient buffer (the CPU engine's, on the CPU), reused by every Adam step.
        let mut grad = StepGradient::new(self.mlp)?;

        while pos.phase < self.schedule.phases.len() {
            let phase = self.schedule.phases[pos.phase];
            match phase {
                Phase::Adam { iters, lr } => {
                    if pos.iter_in_phase == 0 {
                        adam = Adam::new(vars.clone())?;
                    }
                    while pos.iter_in_phase < iters {
                        if self.opts.stop_after == Some(pos.global_iter) {
                            save_ck(&adam, &pos, &mut last_ck)?;
                            self.append_rows(&rows)?;
                            return Ok(TrainOutcome {
                                rows,
                                final_loss: terms,
                                iterations: pos.global_iter,
                                lbfgs: lbfgs_out,
                                second_order,
                                seconds: start.elapsed().as_secs_f64(),
                                completed: false,
                            });
                        }
                        terms = grad.compute(self.mlp, self.set)?;
                        if !terms.is_finite() {
                            self.append_rows(&rows)?;
                            return Err(TrainError::Diverged {
                                iteration: pos.global_iter,
                                phase: pos.phase,
                                term: terms.offending_term(),
                                checkpoint: last_ck,
                            });
                        }
                        let every = self.opts.checkpoint_every;
                        if pos.global_iter == 0
                            || (every > 0 && pos.global_iter.is_multiple_of(every))
                        {
                            save_ck(&adam, &pos, &mut last_ck)?;
                        }
                        if pos.iter_in_phase.is_multiple_of(log_every) {
                            rows.push(self.row(&pos, "adam", lr, &terms, &start));
                            if let Some(f) = &self.opts.on_log {
                                f(pos.global_iter, start.elapsed().as_secs_f64(), self.mlp);
                            }
                            if rows.len() >= 64 {
                                self.append_rows(&rows)?;
                                rows.clear();
                            }
                            if let Some(b) = &bar {
                                b.set_message(format!(
                                    "phase {} adam@{lr:.0e} loss {:.3e}",
                                    pos.phase + 1,
                                    terms.total
                                ));
                            }
                        }
                        adam.step_with(&grad, lr)?;
                        pos.iter_in_phase += 1;
                        pos.global_iter += 1;
                        pos.adam_t = adam.t();
                        if let Some(b) = &bar {
                            b.inc(1);
                        }
                    }
                    terms = self.mlp.loss(self.set)?;
                    rows.push(self.row(&pos, "adam", lr, &terms, &start));
                    if let Some(f) = &self.opts.on_log {
                        f(pos.global_iter, start.elapsed().as_secs_f64(), self.mlp);
                    }
                }
                Phase::Lbfgs { max_iters } => {
                    let mut o = self.opts.lbfgs.clone();
                    o.max_iters = max_iters;
                    let base = pos.global_iter;
                    let phase_no = pos.phase + 1;
                    let on_eval = |evals: u64, loss: f64| {
                        if let Some(b) = &bar {
                            if evals.is_multiple_of(10) {
                                b.set_message(format!(
                                    "phase {phase_no} l-bfgs eval {evals} loss {loss:.3e}"
                                ));
                            }
                        }
                    };
                    o.snapshot_every = log_every;
                    let phase_start = start.elapsed().as_secs_f64();
                    let mut out = run_lbfgs(self.mlp, self.set, &o, &on_eval)?;
                    // Rows and error probes for the accepted iterates, evaluated on a copy so the
                    // network keeps the best point run_lbfgs left in it.
                    if !out.snapshots.is_empty() {
                        let probe = self.mlp.to(self.mlp.dtype(), self.mlp.device())?;
                        for snap in std::mem::take(&mut out.snapshots) {
                            // Iteration 0 is the previous phase's last row; the last one is
                            // logged below with the best point.
                            if snap.iteration == 0 || snap.iteration >= out.iterations {
                                continue;
                            }
                            probe.set_flat_params(&snap.theta)?;
                            let t = probe.loss(self.set)?;
                            rows.push(LogRow {
                                iteration: base + snap.iteration,
                                phase: pos.phase,
                                optimizer: "lbfgs".into(),
                                lr: 0.0,
                                loss: t.total,
                                loss_pde: t.pde,
                                loss_bc: t.bc,
                                seconds: phase_start + snap.seconds,
                            });
                            if let Some(f) = &self.opts.on_log {
                                f(base + snap.iteration, phase_start + snap.seconds, &probe);
                            }
                        }
                    }
                    terms = self.mlp.loss(self.set)?;
                    if !terms.is_finite() {
                        return Err(TrainError::Diverged {
                            iteration: base + out.iterations,
                            phase: pos.phase,
                            term: terms.offending_term(),
                            checkpoint: last_ck,
                        });
                    }
                    pos.global_iter = base + out.iterations;
                    if let Some(b) = &bar {
                        b.inc(max_iters);
                    }
                    rows.push(self.row(&pos, "lbfgs", 0.0, &terms, &start));
                    if let Some(f) = &self.opts.on_log {
                        f(pos.global_iter, start.elapsed().as_secs_f64(), self.mlp);
                    }
                    lbfgs_out.push(out);
                }
                Phase::Lm { max_iters } | Phase::Gn { max_iters } => {
                    let name = if matches!(phase, Phase::Lm { .. }) {
                        "lm"
                    } else {
                        "gn"
                    };
                    let mut o = self.opts.lm.clone();
                    o.max_iters = max_iters;
                    let base = pos.global_iter;
                    let phase_idx = pos.phase;
                    let mut pending: Vec<LogRow> = Vec::new();
                    let mut last_mu = 0.0;
                    let mut last_flush = Instant::now();
                    let mut on_iter = |k: u64, mu: f64, t: &LossTerms| -> Result<()> {
                        last_mu = mu;
                        if !t.is_finite() {
                            return Err(TrainError::Diverged {
                                iteration: base + k,
                                phase: phase_idx,
                                term: t.offending_term(),
                                checkpoint: last_ck.clone(),
                            });
                        }
                        if k.is_multiple_of(log_every) {
                            // The network holds the accepted iterate here (a rejected trial has
                            // been undone before on_iter is called).
                            if let Some(f) = &self.opts.on_log {
                                f(base + k, start.elapsed().as_secs_f64(), self.mlp);
                            }
                            pending.push(LogRow {
                                iteration: base + k,
                                phase: phase_idx,
                                optimizer: name.into(),
                                lr: mu,
                                loss: t.total,
                                loss_pde: t.pde,
                                loss_bc: t.bc,
                                seconds: start.elapsed().as_secs_f64(),
                            });
                            // Second-order iterations can take seconds each: flush by time
                            // too, so metrics.csv follows a long phase as it runs.
                            if pending.len() >= 64 || last_flush.elapsed().as_secs() >= 10 {
                                self.append_rows(&pending)?;
                                pending.clear();
                                last_flush = Instant::now();
                            }
                        }
                        if let Some(b) = &bar {
                            if k > 0 {
                                b.inc(1);
                            }
                            b.set_message(format!(
                                "phase {} {name} μ {mu:.1e} loss {:.3e}",
                                phase_idx + 1,
                                t.total
                            ));
                        }
                        Ok(())
                    };
                    // Rows already collected in this run go to disk first, so the file stays in
                    // iteration order when the phase flushes its own rows.
                    self.append_rows(&rows)?;
                    rows.clear();
                    let res = match phase {
                        Phase::Lm { .. } => run_lm(self.mlp, self.set, &o, &mut on_iter),
                        _ => run_gn(self.mlp, self.set, &o, &mut on_iter),
                    };
                    let out = match res {
                        Ok(out) => out,
                        Err(e) => {
                            self.append_rows(&pending)?;
                            return Err(e);
                        }
                    };
                    rows.extend(pending);
                    terms = self.mlp.loss(self.set)?;
                    if !terms.is_finite() {
                        self.append_rows(&rows)?;
                        return Err(TrainError::Diverged {
                            iteration: base + out.iterations,
                            phase: pos.phase,
                            term: terms.offending_term(),
                            checkpoint: last_ck,
                        });
                    }
                    pos.global_iter = base + out.iterations;
                    if let Some(b) = &bar {
                        b.inc(max_iters.saturating_sub(out.iterations));
                    }
                    if rows.last().map(|r| r.iteration) != Some(pos.global_iter) {
                        rows.push(self.row(&pos, name, last_mu, &terms, &start));
                        if let Some(f) = &self.opts.on_log {
                            f(pos.global_iter, start.elapsed().as_secs_f64(), self.mlp);
                        }
                    }
                    second_order.push(out);
                }
            }
            pos.phase += 1;
            pos.iter_in_phase = 0;
            save_ck(&adam, &pos, &mut last_ck)?;
            self.append_rows(&rows)?;
            rows.clear();
        }
        Ok(TrainOutcome {
            rows: self.read_all_rows().unwrap_or(rows),
            final_loss: terms,
            iterations: pos.global_iter,
            lbfgs: lbfgs_out,
            second_order,
            seconds: start.elapsed().as_secs_f64(),
            completed: true,
        })
    }

    fn row(&self, pos: &LoopPosition, opt: &str, lr: f64, t: &LossTerms, start: &Clock) -> LogRow {
        LogRow {
            iteration: pos.global_iter,
            phase: pos.phase,
            optimizer: opt.into(),
            lr,
            loss: t.total,
            loss_pde: t.pde,
            loss_bc: t.bc,
            seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// The clock of the last metrics.csv row at or before `iteration`: where a resume from a
    /// checkpoint that did not record its time picks the clock up.
    fn seconds_logged_up_to(&self, iteration: u64) -> Option<f64> {
        self.read_all_rows()?
            .iter()
            .rev()
            .find(|r| r.iteration <= iteration)
            .map(|r| r.seconds)
    }

    /// Every row written so far (after a resume, the rows of the earlier part too).
    fn read_all_rows(&self) -> Option<Vec<LogRow>> {
        let path = self.opts.run_dir.as_ref()?.join("metrics.csv");
        let text = std::fs::read_to_string(path).ok()?;
        text.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                Some(LogRow {
                    iteration: f.first()?.parse().ok()?,
                    phase: f.get(1)?.parse().ok()?,
                    optimizer: f.get(2)?.to_string(),
                    lr: f.get(3)?.parse().ok()?,
                    loss: f.get(4)?.parse().ok()?,
                    loss_pde: f.get(5)?.parse().ok()?,
                    loss_bc: f.get(6)?.parse().ok()?,
                    seconds: f.get(7)?.parse().ok()?,
                })
            })
            .collect()
    }
}

/// Training wall clock that a resumed run continues (seconds before the checkpoint + time since).
struct Clock {
    start: Instant,
    before: Duration,
}

impl Clock {
    fn continuing(seconds_before: f64) -> Self {
        let before = Duration::try_from_secs_f64(seconds_before).unwrap_or_default();
        Self {
            start: Instant::now(),
            before,
        }
    }
    fn elapsed(&self) -> Duration {
        self.before + self.start.elapsed()
    }
}
