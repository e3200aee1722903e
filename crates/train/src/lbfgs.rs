//! L-BFGS on the flat f64 parameter vector, through argmin (More–Thuente line search).
//!
//! Stopping follows SciPy's L-BFGS-B as DeepXDE calls it: a gradient-norm tolerance and an
//! iteration cap; the cost-change test is off by default (DeepXDE passes ftol = 0). argmin asks
//! for the cost and the gradient separately at the same point; both come from one forward and
//! backward pass, cached by θ. The best point ever evaluated is kept, so a line search that fails
//! deep into convergence (it happens once the loss reaches round-off) still returns it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use argmin::core::observers::{Observe, ObserverMode};
use argmin::core::{CostFunction, Executor, Gradient, State, KV};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use mspinn_model::{Evaluator, Mlp, ResidualSet};

use crate::{Result, TrainError};

#[derive(Clone, Debug)]
pub struct LbfgsOptions {
    pub max_iters: u64,
    /// History size m.
    pub memory: usize,
    /// Stop when ‖∇L‖₂ falls below this.
    pub tol_grad: f64,
    /// Stop when |L_k − L_{k+1}| falls below this (0 disables it).
    pub tol_cost: f64,
    /// Keep (iteration, loss, θ) every this many iterations (0: none), so the caller can log
    /// the loss and evaluate the error of accepted iterates after the run: argmin's observers
    /// must be `'static` and cannot reach the caller's logging.
    pub snapshot_every: u64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        Self {
            max_iters: 15000,
            memory: 50,
            tol_grad: 1e-8,
            tol_cost: 0.0,
            snapshot_every: 0,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LbfgsOutcome {
    pub iterations: u64,
    pub evaluations: u64,
    pub initial_loss: f64,
    pub final_loss: f64,
    pub reason: String,
    /// Accepted iterates every `snapshot_every` iterations.
    #[serde(skip)]
    pub snapshots: Vec<LbfgsSnapshot>,
}

/// An accepted L-BFGS iterate, kept for logging after the run.
#[derive(Clone, Debug)]
pub struct LbfgsSnapshot {
    /// Iterations done within the phase.
    pub iteration: u64,
    pub loss: f64,
    /// Seconds since the phase started.
    pub seconds: f64,
    pub theta: Vec<f64>,
}

struct Cached {
    theta: Vec<f64>,
    loss: f64,
    grad: Vec<f64>,
}

/// The lowest-loss point seen so far, (θ, L).
type SharedBest = Rc<RefCell<Option<(Vec<f64>, f64)>>>;

struct PinnObjective<'a> {
    /// argmin's cost and gradient take `&self`; evaluations are sequential, so a RefCell.
    evaluator: RefCell<&'a mut dyn Evaluator>,
    grad: RefCell<mspinn_model::Gradient>,
    mlp: &'a Mlp,
    set: &'a ResidualSet,
    last: RefCell<Option<Cached>>,
    /// Shared with the caller: argmin consumes the problem, and an error loses it.
    best: SharedBest,
    evaluations: Rc<Cell<u64>>,
    /// Called with (evaluation count, loss) so the caller can draw progress.
    on_eval: &'a dyn Fn(u64, f64),
}

impl PinnObjective<'_> {
    fn eval(&self, theta: &[f64]) -> std::result::Result<(f64, Vec<f64>), argmin::core::Error> {
        if let Some(c) = self.last.borrow().as_ref() {
            if c.theta == theta {
                return Ok((c.loss, c.grad.clone()));
            }
        }
        self.mlp.set_flat_params(theta)?;
        let mut g = self.grad.borrow_mut();
        let terms = self
            .evaluator
            .borrow_mut()
            .loss_and_grad(self.mlp, self.set, &mut g)?;
        let loss = terms.total;
        let grad = g.to_f64()?;
        self.evaluations.set(self.evaluations.get() + 1);
        (self.on_eval)(self.evaluations.get(), loss);
        if loss.is_finite() {
            let mut best = self.best.borrow_mut();
            if best.as_ref().is_none_or(|(_, b)| loss < *b) {
                *best = Some((theta.to_vec(), loss));
            }
        }
        *self.last.borrow_mut() = Some(Cached {
            theta: theta.to_vec(),
            loss,
            grad: grad.clone(),
        });
        Ok((loss, grad))
    }
}

impl CostFunction for PinnObjective<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.eval(p)?.0)
    }
}

impl Gradient for PinnObjective<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.eval(p)?.1)
    }
}

/// Runs L-BFGS from the network's current parameters and leaves the best point found in it.
pub fn run_lbfgs(
    evaluator: &mut dyn Evaluator,
    mlp: &Mlp,
    set: &ResidualSet,
    opts: &LbfgsOptions,
    on_eval: &dyn Fn(u64, f64),
) -> Result<LbfgsOutcome> {
    let theta0 = mlp.flat_params()?;
    let initial_loss = evaluator.loss(mlp, set)?.total;
    let best = Rc::new(RefCell::new(Some((theta0.clone(), initial_loss))));
    let evaluations = Rc::new(Cell::new(0u64));
    let problem = PinnObjective {
        evaluator: RefCell::new(evaluator),
        grad: RefCell::new(mspinn_model::Gradient::default()),
        mlp,
        set,
        last: RefCell::new(None),
        best: best.clone(),
        evaluations: evaluations.clone(),
        on_eval,
    };
    let lbfgs_err = |e: argmin::core::Error| TrainError::Lbfgs(e.to_string());
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), opts.memory.max(1))
        .with_tolerance_grad(opts.tol_grad)
        .map_err(lbfgs_err)?
        .with_tolerance_cost(opts.tol_cost)
        .map_err(lbfgs_err)?;
    let max_iters = opts.max_iters;
    let iters = Rc::new(Cell::new(0u64));
    let snapshots = Rc::new(RefCell::new(Vec::new()));
    let observer = IterCounter {
        iters: iters.clone(),
        every: opts.snapshot_every,
        snapshots: snapshots.clone(),
        start: std::time::Instant::now(),
    };
    let run = Executor::new(problem, solver)
        .configure(|state| state.param(theta0).max_iters(max_iters))
        .add_observer(observer, ObserverMode::Always)
        .run();
    let reason = match run {
        Ok(res) => res
            .state()
            .get_termination_reason()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "stopped".into()),
        // A failed line search near round-off is the usual end of a converged run, not a fault:
        // report it and keep the best point.
        Err(e) => format!("stopped early: {e}"),
    };
    let iterations = iters.get();
    let evaluations = evaluations.get();
    let (best_theta, best_loss) = best
        .borrow_mut()
        .take()
        .expect("initialised with the starting point");
    mlp.set_flat_params(&best_theta)?;
    Ok(LbfgsOutcome {
        iterations,
        evaluations,
        initial_loss,
        final_loss: best_loss,
        reason,
        snapshots: snapshots.take(),
    })
}

/// Records the iteration count as argmin reports it, so it survives a run that ends in an error,
/// and every `every`-th accepted iterate.
struct IterCounter {
    iters: Rc<Cell<u64>>,
    every: u64,
    snapshots: Rc<RefCell<Vec<LbfgsSnapshot>>>,
    start: std::time::Instant,
}

impl<I: State<Param = Vec<f64>, Float = f64>> Observe<I> for IterCounter {
    fn observe_iter(
        &mut self,
        state: &I,
        _kv: &KV,
    ) -> std::result::Result<(), argmin::core::Error> {
        // argmin counts from 0 and increments after the observers: the iteration just done is
        // number k + 1 (an `lbfgs:N` phase reports N, not N − 1).
        let k = state.get_iter() + 1;
        self.iters.set(k);
        if self.every > 0 && k.is_multiple_of(self.every) {
            if let Some(theta) = state.get_param() {
                self.snapshots.borrow_mut().push(LbfgsSnapshot {
                    iteration: k,
                    loss: state.get_cost(),
                    seconds: self.start.elapsed().as_secs_f64(),
                    theta: theta.clone(),
                });
            }
        }
        Ok(())
    }
}
