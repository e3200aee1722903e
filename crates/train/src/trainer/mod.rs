//! The training loop: one code path for every problem kind and device, reading as the phases it
//! runs ([`phases`]): Adam, L-BFGS, and the second-order `lm` / `gn`.
//!
//! A schedule's Adam phases each start with fresh moments (DeepXDE, which the paper used,
//! recompiles the model and so re-creates Adam for every learning rate); L-BFGS phases run in f64
//! on the flat parameter vector; `lm` / `gn` phases take Levenberg–Marquardt or Gauss–Newton steps
//! from the residual Jacobian ([`crate::lm`]) and log a row every `log_every` of their iterations
//! with μ in the `lr` column. Loss terms are checked every iteration: the first non-finite one
//! stops the run with its iteration, and the last checkpoint written (always from a finite loss)
//! stays on disk. `stop_after` and interrupts act between two iterations of Adam and LM/GN
//! phases (an LM/GN phase resumes with its remaining iterations, μ starting again at τ); an
//! L-BFGS phase is atomic.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use mspinn_model::{EngineConfig, Gradient, LossTerms, Mlp, ResidualSet};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, LoopPosition};
use crate::lbfgs::{LbfgsOptions, LbfgsOutcome};
use crate::lm::{LmOptions, LmOutcome};
use crate::{Adam, Phase, Result, Schedule, TrainError};

mod phases;

use phases::{PhaseEnd, RunState};

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
    /// Run folder for metrics.csv and checkpoints/; None keeps everything in memory (every row
    /// in [`TrainOutcome::rows`], no checkpoints).
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
    /// Which evaluator computes the loss, gradients, residuals and Jacobians (built once per
    /// [`Trainer::run`]).
    pub engine: EngineConfig,
    /// Set (by a SIGINT/SIGTERM handler, say) to stop as if `stop_after` were reached: Adam and
    /// LM/GN phases stop after the current step or iteration, L-BFGS (atomic) at its end; a
    /// checkpoint is written and the rows flushed, and the outcome is not `completed`.
    pub interrupt: Option<&'static AtomicBool>,
    /// Files in the run folder besides metrics.csv whose rows start with the iteration (the
    /// CLI's history.csv): a resume truncates them with metrics.csv to the checkpoint's last
    /// logged iteration.
    pub history_files: Vec<PathBuf>,
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
            engine: EngineConfig::default(),
            interrupt: None,
            history_files: Vec::new(),
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
    /// Without a run folder, the rows the phases flush (every 64 rows, at each checkpoint): the
    /// memory that stands in for metrics.csv, so that [`TrainOutcome::rows`] holds every row of
    /// the run either way (a caller without a folder, such as the Python package, gets the whole
    /// history).
    kept: std::sync::Mutex<Vec<LogRow>>,
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
            kept: Default::default(),
        }
    }

    fn checkpoint_dir(&self) -> Option<PathBuf> {
        self.opts.run_dir.as_ref().map(|d| d.join("checkpoints"))
    }

    /// Appends `rows` to metrics.csv, or without a run folder keeps them in memory.
    fn append_rows(&self, rows: &[LogRow]) -> Result<()> {
        let Some(dir) = &self.opts.run_dir else {
            self.kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(rows);
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
    /// The evaluator is built here, once, from [`TrainOptions::engine`]; every phase uses it.
    pub fn run(&self, resume: bool) -> Result<TrainOutcome> {
        let mut evaluator = mspinn_model::evaluator::build(&self.opts.engine, self.mlp)?;
        let ev = &mut *evaluator;
        let mut st = self.start(resume)?;
        if let Some(b) = &st.bar {
            b.set_length(self.schedule.total_iters());
            b.set_position(st.pos.global_iter);
        }
        while st.pos.phase < self.schedule.phases.len() {
            if self.interrupted() {
                self.save_checkpoint(&mut st)?;
                return Ok(self.outcome(st, false));
            }
            match self.schedule.phases[st.pos.phase] {
                Phase::Adam { iters, lr } => {
                    if self.adam_phase(ev, &mut st, iters, lr)? == PhaseEnd::Stopped {
                        return Ok(self.outcome(st, false));
                    }
                }
                Phase::Lbfgs { max_iters } => self.lbfgs_phase(ev, &mut st, max_iters)?,
                phase @ (Phase::Lm { max_iters } | Phase::Gn { max_iters }) => {
                    if self.second_order_phase(ev, &mut st, phase, max_iters)? == PhaseEnd::Stopped
                    {
                        return Ok(self.outcome(st, false));
                    }
                }
            }
            st.pos.phase += 1;
            st.pos.iter_in_phase = 0;
            self.save_checkpoint(&mut st)?;
        }
        let mut out = self.outcome(st, true);
        if let Some(all) = self.read_all_rows() {
            out.rows = all;
        }
        Ok(out)
    }

    /// The outcome of the loop's state; without a run folder its rows are every row of the run
    /// (those kept in memory, then those not yet flushed).
    fn outcome(&self, st: RunState, completed: bool) -> TrainOutcome {
        let mut out = st.outcome(completed);
        if self.opts.run_dir.is_none() {
            let mut all = std::mem::take(
                &mut *self
                    .kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            all.append(&mut out.rows);
            out.rows = all;
        }
        out
    }

    /// The loop's state at the start: fresh, or the checkpoint's position, network and Adam
    /// moments when resuming.
    fn start(&self, resume: bool) -> Result<RunState> {
        let vars = self.mlp.vars();
        let sched_str = self.schedule.to_string();
        let mut pos = LoopPosition {
            phase: 0,
            iter_in_phase: 0,
            global_iter: 0,
            adam_t: 0,
            schedule: sched_str.clone(),
            seed: self.mlp.config().seed,
            seconds: 0.0,
            last_logged: None,
            weights: None,
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
            // Rows logged after the checkpoint are logged again by this run: drop them.
            self.truncate_logs(&pos)?;
            // Later checkpoints belong to the (possibly extended) schedule of this run.
            pos.schedule = sched_str;
            if pos.seconds == 0.0 {
                pos.seconds = self.seconds_logged_up_to(pos.global_iter).unwrap_or(0.0);
            }
            if let Some(state) = ck.adam {
                adam = Adam::with_state(vars, state)?;
            }
        } else if let Some(dir) = &self.opts.run_dir {
            // A fresh run starts a fresh metrics file.
            let _ = std::fs::remove_file(dir.join("metrics.csv"));
        }
        Ok(RunState {
            start: Clock::continuing(pos.seconds),
            last_row: pos.last_logged,
            pos,
            adam,
            grad: Gradient::default(),
            rows: Vec::new(),
            lbfgs: Vec::new(),
            second_order: Vec::new(),
            terms: LossTerms::default(),
            last_checkpoint: String::from("(none: no run folder)"),
            bar: match &self.opts.progress {
                Progress::Bar(b) => Some(b.clone()),
                Progress::Quiet => None,
            },
        })
    }

    /// Whether the run was asked to stop ([`TrainOptions::interrupt`]).
    fn interrupted(&self) -> bool {
        self.opts
            .interrupt
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Keeps, in metrics.csv and the history files, the header and the rows up to the
    /// checkpoint's last logged iteration (before its iteration for older checkpoints).
    fn truncate_logs(&self, pos: &LoopPosition) -> Result<()> {
        let Some(dir) = &self.opts.run_dir else {
            return Ok(());
        };
        let keep = |it: u64| match pos.last_logged {
            Some(last) => it <= last,
            None => it < pos.global_iter,
        };
        let files = std::iter::once(dir.join("metrics.csv")).chain(self.opts.history_files.clone());
        for path in files {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut out = String::with_capacity(text.len());
            for (i, line) in text.lines().enumerate() {
                let it = line.split(',').next().and_then(|f| f.parse::<u64>().ok());
                if i == 0 || it.is_some_and(keep) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            if out != text {
                checkpoint::atomic_write(&path, out.as_bytes())?;
            }
        }
        Ok(())
    }

    /// Writes a checkpoint of the current position (when there is a run folder), after the rows
    /// logged so far: the checkpoint records the last of them, which a resume truncates to.
    fn save_checkpoint(&self, st: &mut RunState) -> Result<()> {
        self.append_rows(&st.rows)?;
        st.rows.clear();
        if let Some(dir) = self.checkpoint_dir() {
            let pos = LoopPosition {
                seconds: st.start.elapsed().as_secs_f64(),
                last_logged: st.last_row,
                ..st.pos.clone()
            };
            st.last_checkpoint = checkpoint::save(&dir, self.mlp, &st.adam.state()?, &pos)?
                .display()
                .to_string();
        }
        Ok(())
    }

    /// The one divergence guard: Ok while every loss term is finite. Otherwise the rows not yet
    /// on disk are written, and the error names the iteration, the phase, the offending term and
    /// the last checkpoint (always one from a finite loss).
    fn check_finite(
        &self,
        terms: &LossTerms,
        iteration: u64,
        phase: usize,
        unwritten: &mut Vec<LogRow>,
        last_checkpoint: &str,
    ) -> Result<()> {
        if terms.is_finite() {
            return Ok(());
        }
        self.append_rows(unwritten)?;
        unwritten.clear();
        Err(TrainError::Diverged {
            iteration,
            phase,
            term: terms.offending_term(),
            checkpoint: last_checkpoint.to_string(),
        })
    }

    /// Calls the `on_log` hook, if any.
    fn log_hook(&self, iteration: u64, seconds: f64, mlp: &Mlp) {
        if let Some(f) = &self.opts.on_log {
            f(iteration, seconds, mlp);
        }
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
