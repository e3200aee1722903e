//! The phases of a schedule, each a method of [`Trainer`] over the loop's [`RunState`]: Adam
//! steps, an L-BFGS run, a Levenberg–Marquardt or Gauss–Newton run. All evaluate through the one
//! evaluator the run was given and stop through the one divergence guard
//! ([`Trainer::check_finite`]).

use std::time::Instant;

use indicatif::ProgressBar;
use mspinn_model::{Evaluator, Gradient, LossTerms};

use super::{Clock, LogRow, TrainOutcome, Trainer};
use crate::checkpoint::LoopPosition;
use crate::lbfgs::{run_lbfgs, LbfgsOutcome};
use crate::lm::{run_gn, run_lm, LmOutcome};
use crate::{Adam, Phase, Result, TrainError};

/// Everything the loop carries from phase to phase.
pub(super) struct RunState {
    pub pos: LoopPosition,
    pub adam: Adam,
    /// The gradient buffer, reused by every Adam step.
    pub grad: Gradient,
    /// Rows collected and not yet appended to metrics.csv.
    pub rows: Vec<LogRow>,
    pub lbfgs: Vec<LbfgsOutcome>,
    pub second_order: Vec<LmOutcome>,
    /// The loss terms at the network's current parameters.
    pub terms: LossTerms,
    pub last_checkpoint: String,
    pub start: Clock,
    pub bar: Option<ProgressBar>,
    /// The iteration of the last row logged (on disk or in `rows`): a phase does not log an
    /// iteration twice (its first row is the previous phase's last).
    pub last_row: Option<u64>,
}

impl RunState {
    pub fn outcome(self, completed: bool) -> TrainOutcome {
        TrainOutcome {
            final_loss: self.terms,
            iterations: self.pos.global_iter,
            lbfgs: self.lbfgs,
            second_order: self.second_order,
            seconds: self.start.elapsed().as_secs_f64(),
            completed,
            rows: self.rows,
        }
    }

    /// Queues a row (and remembers its iteration).
    pub fn push(&mut self, row: LogRow) {
        self.last_row = Some(row.iteration);
        self.rows.push(row);
    }

    /// Whether `iteration` still needs a row.
    pub fn unlogged(&self, iteration: u64) -> bool {
        self.last_row.is_none_or(|last| iteration > last)
    }
}

/// How a phase ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PhaseEnd {
    Done,
    /// `stop_after` was reached: the run stops as if interrupted.
    Stopped,
}

impl Trainer<'_> {
    /// Adam steps at a fixed learning rate (fresh moments at the phase's start). With an
    /// engine that keeps θ and the moments itself ([`Evaluator::resident_adam`], the GPU
    /// engine's), they are loaded once and written back into the network only where the loop
    /// reads it: before a row is logged, a checkpoint, a stop and the phase's end.
    pub(super) fn adam_phase(
        &self,
        ev: &mut dyn Evaluator,
        st: &mut RunState,
        iters: u64,
        lr: f64,
    ) -> Result<PhaseEnd> {
        let log_every = self.opts.log_every.max(1);
        if st.pos.iter_in_phase == 0 {
            st.adam = Adam::new(self.mlp.vars())?;
        }
        let resident = match ev.resident_adam() {
            Some(ra) => {
                let (m, v) = st.adam.flat_moments()?;
                ra.load(self.mlp, self.set, &m, &v, st.adam.t())?;
                st.pos.adam_t = st.adam.t();
                true
            }
            None => false,
        };
        while st.pos.iter_in_phase < iters {
            let every = self.opts.checkpoint_every;
            let checkpoint_due =
                st.pos.global_iter == 0 || (every > 0 && st.pos.global_iter.is_multiple_of(every));
            let log_due =
                st.pos.iter_in_phase.is_multiple_of(log_every) && st.unlogged(st.pos.global_iter);
            let stop = self.opts.stop_after == Some(st.pos.global_iter) || self.interrupted();
            if resident && (stop || checkpoint_due || log_due) {
                self.store_resident(ev, st)?;
            }
            if stop {
                self.save_checkpoint(st)?;
                return Ok(PhaseEnd::Stopped);
            }
            st.terms = match ev.resident_adam() {
                Some(ra) if resident => ra.step(self.set, lr)?,
                _ => ev.loss_and_grad(self.mlp, self.set, &mut st.grad)?,
            };
            self.check_finite(
                &st.terms,
                st.pos.global_iter,
                st.pos.phase,
                &mut st.rows,
                &st.last_checkpoint,
            )?;
            if checkpoint_due {
                self.save_checkpoint(st)?;
            }
            if log_due {
                st.push(self.row(&st.pos, "adam", lr, &st.terms, &st.start));
                self.log_hook(
                    st.pos.global_iter,
                    st.start.elapsed().as_secs_f64(),
                    self.mlp,
                );
                if st.rows.len() >= 64 {
                    self.append_rows(&st.rows)?;
                    st.rows.clear();
                }
                if let Some(b) = &st.bar {
                    b.set_message(format!(
                        "phase {} adam@{lr:.0e} loss {:.3e}",
                        st.pos.phase + 1,
                        st.terms.total
                    ));
                }
            }
            if !resident {
                st.adam.step_with(&st.grad, lr)?;
            }
            st.pos.iter_in_phase += 1;
            st.pos.global_iter += 1;
            st.pos.adam_t = if resident {
                st.pos.adam_t + 1
            } else {
                st.adam.t()
            };
            if let Some(b) = &st.bar {
                b.inc(1);
            }
        }
        if resident {
            self.store_resident(ev, st)?;
        }
        st.terms = ev.loss(self.mlp, self.set)?;
        if !st.unlogged(st.pos.global_iter) {
            // A zero-length phase: its row is the previous one's.
            return Ok(PhaseEnd::Done);
        }
        st.push(self.row(&st.pos, "adam", lr, &st.terms, &st.start));
        self.log_hook(
            st.pos.global_iter,
            st.start.elapsed().as_secs_f64(),
            self.mlp,
        );
        Ok(PhaseEnd::Done)
    }

    /// Writes a resident Adam's θ into the network and its moments and step count into
    /// `st.adam` (what checkpoints save).
    fn store_resident(&self, ev: &mut dyn Evaluator, st: &mut RunState) -> Result<()> {
        let Some(ra) = ev.resident_adam() else {
            return Ok(());
        };
        let (mut m, mut v) = (Vec::new(), Vec::new());
        let t = ra.store(self.mlp, &mut m, &mut v)?;
        st.adam = Adam::from_flat(self.mlp.vars(), &m, &v, t)?;
        st.pos.adam_t = t;
        Ok(())
    }

    /// One L-BFGS run; rows and error probes for its accepted iterates every `log_every`.
    pub(super) fn lbfgs_phase(
        &self,
        ev: &mut dyn Evaluator,
        st: &mut RunState,
        max_iters: u64,
    ) -> Result<()> {
        let mut o = self.opts.lbfgs.clone();
        o.max_iters = max_iters;
        o.snapshot_every = self.opts.log_every.max(1);
        let base = st.pos.global_iter;
        let phase_no = st.pos.phase + 1;
        let bar = st.bar.clone();
        let on_eval = |evals: u64, loss: f64| {
            if let Some(b) = &bar {
                if evals.is_multiple_of(10) {
                    b.set_message(format!(
                        "phase {phase_no} l-bfgs eval {evals} loss {loss:.3e}"
                    ));
                }
            }
        };
        let phase_start = st.start.elapsed().as_secs_f64();
        let mut out = run_lbfgs(ev, self.mlp, self.set, &o, &on_eval)?;
        // Rows and error probes for the accepted iterates, evaluated on a copy so the network
        // keeps the best point run_lbfgs left in it.
        if !out.snapshots.is_empty() {
            let probe = self.mlp.to(self.mlp.dtype(), self.mlp.device())?;
            for snap in std::mem::take(&mut out.snapshots) {
                // Iteration 0 is the previous phase's last row; the last one is logged below
                // with the best point.
                if snap.iteration == 0 || snap.iteration >= out.iterations {
                    continue;
                }
                probe.set_flat_params(&snap.theta)?;
                let t = ev.loss(&probe, self.set)?;
                st.push(LogRow {
                    iteration: base + snap.iteration,
                    phase: st.pos.phase,
                    optimizer: "lbfgs".into(),
                    lr: 0.0,
                    loss: t.total,
                    loss_pde: t.pde,
                    loss_bc: t.bc,
                    seconds: phase_start + snap.seconds,
                });
                self.log_hook(base + snap.iteration, phase_start + snap.seconds, &probe);
            }
        }
        st.terms = ev.loss(self.mlp, self.set)?;
        self.check_finite(
            &st.terms,
            base + out.iterations,
            st.pos.phase,
            &mut st.rows,
            &st.last_checkpoint,
        )?;
        st.pos.global_iter = base + out.iterations;
        if let Some(b) = &st.bar {
            b.inc(max_iters);
        }
        if st.unlogged(st.pos.global_iter) {
            st.push(self.row(&st.pos, "lbfgs", 0.0, &st.terms, &st.start));
            self.log_hook(
                st.pos.global_iter,
                st.start.elapsed().as_secs_f64(),
                self.mlp,
            );
        }
        st.lbfgs.push(out);
        Ok(())
    }

    /// A Levenberg–Marquardt (`lm`) or Gauss–Newton (`gn`) run, logging every `log_every` of
    /// its iterations with μ in the `lr` column and flushing rows by count and by time. An
    /// interrupt (or `stop_after`) between two iterations checkpoints the accepted iterate with
    /// the iterations done; a resume runs the rest of the phase (μ starts again at τ).
    pub(super) fn second_order_phase(
        &self,
        ev: &mut dyn Evaluator,
        st: &mut RunState,
        phase: Phase,
        max_iters: u64,
    ) -> Result<PhaseEnd> {
        let name = if matches!(phase, Phase::Lm { .. }) {
            "lm"
        } else {
            "gn"
        };
        let log_every = self.opts.log_every.max(1);
        let mut o = self.opts.lm.clone();
        o.max_iters = max_iters.saturating_sub(st.pos.iter_in_phase);
        let base = st.pos.global_iter;
        let phase_idx = st.pos.phase;
        // Rows already collected in this run go to disk first, so the file stays in iteration
        // order when the phase flushes its own rows.
        self.append_rows(&st.rows)?;
        st.rows.clear();
        let mut pending: Vec<LogRow> = Vec::new();
        let mut last_row = st.last_row;
        let mut last_mu = 0.0;
        let mut last_flush = Instant::now();
        let mut stopped_at = None;
        let (start, bar, last_ck) = (&st.start, &st.bar, st.last_checkpoint.clone());
        let mut on_iter = |k: u64, mu: f64, t: &LossTerms| -> Result<()> {
            last_mu = mu;
            self.check_finite(t, base + k, phase_idx, &mut pending, &last_ck)?;
            if k > 0 && (self.interrupted() || self.opts.stop_after == Some(base + k)) {
                // The network holds the accepted iterate k (see below).
                stopped_at = Some(k);
                return Err(TrainError::Stopped);
            }
            if k.is_multiple_of(log_every) && last_row.is_none_or(|l| base + k > l) {
                last_row = Some(base + k);
                // The network holds the accepted iterate here (a rejected trial has been undone
                // before on_iter is called).
                self.log_hook(base + k, start.elapsed().as_secs_f64(), self.mlp);
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
                // Second-order iterations can take seconds each: flush by time too, so
                // metrics.csv follows a long phase as it runs.
                if pending.len() >= 64 || last_flush.elapsed().as_secs() >= 10 {
                    self.append_rows(&pending)?;
                    pending.clear();
                    last_flush = Instant::now();
                }
            }
            if let Some(b) = bar {
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
        let res = match phase {
            Phase::Lm { .. } => run_lm(ev, self.mlp, self.set, &o, &mut on_iter),
            _ => run_gn(ev, self.mlp, self.set, &o, &mut on_iter),
        };
        let out = match (res, stopped_at) {
            (Ok(out), _) => out,
            (Err(TrainError::Stopped), Some(k)) => {
                st.rows.extend(pending);
                st.pos.global_iter = base + k;
                st.pos.iter_in_phase += k;
                st.terms = ev.loss(self.mlp, self.set)?;
                self.save_checkpoint(st)?;
                self.append_rows(&st.rows)?;
                st.rows.clear();
                return Ok(PhaseEnd::Stopped);
            }
            (Err(e), _) => {
                self.append_rows(&pending)?;
                return Err(e);
            }
        };
        st.rows.extend(pending);
        st.last_row = last_row;
        st.terms = ev.loss(self.mlp, self.set)?;
        self.check_finite(
            &st.terms,
            base + out.iterations,
            st.pos.phase,
            &mut st.rows,
            &st.last_checkpoint,
        )?;
        st.pos.global_iter = base + out.iterations;
        if let Some(b) = &st.bar {
            b.inc(max_iters.saturating_sub(out.iterations));
        }
        if st.unlogged(st.pos.global_iter) {
            st.push(self.row(&st.pos, name, last_mu, &st.terms, &st.start));
            self.log_hook(
                st.pos.global_iter,
                st.start.elapsed().as_secs_f64(),
                self.mlp,
            );
        }
        st.second_order.push(out);
        Ok(PhaseEnd::Done)
    }
}
