//! The typed description of a training run — problem, network, points, schedule, trials — with
//! the paper's presets, run files, and the changes a command line (or a caller) makes to them.
//! A [`TrainSpec`] is what every run folder records as `config.toml`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use mspinn_model::{Activation, Init};
use mspinn_train::{Damping, LmOptions, Schedule, SolveSpace};
use serde::{Deserialize, Serialize};

use crate::args::hidden_widths;
use crate::config::{NumberOrString, ProblemConfig};
use crate::flags::{PointsKind, Precision};

/// Everything that defines a training run: written as the run folder's config.toml.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    pub problem: ProblemConfig,
    pub network: NetworkSpec,
    pub points: PointsSpec,
    pub training: TrainingSpec,
}

/// Every field is optional in a run file (the fig4-darcy preset's values fill in).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    pub widths: Vec<usize>,
    pub activation: Activation,
    pub init: Init,
    pub seed: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PointsSpec {
    pub kind: String,
    pub n: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSpec {
    pub schedule: String,
    pub lambda: f64,
    pub trials: usize,
    pub dtype: String,
    pub lbfgs_memory: usize,
    /// Where lm/gn phases solve the damped normal equations: auto, parameter or sample.
    #[serde(default)]
    pub lm_space: SolveSpace,
    /// LM/GN damping matrix: marquardt (diag JᵀJ) or identity.
    #[serde(default)]
    pub lm_damping: Damping,
    /// Initial LM damping τ (μ₀ = τ, or τ·max diag JᵀJ for identity damping).
    #[serde(default = "default_lm_tau")]
    pub lm_tau: f64,
    /// Rows in metrics.csv and history.csv every this many iterations (`--log-every`).
    pub log_every: u64,
    /// A checkpoint every this many iterations (`--checkpoint-every`).
    pub checkpoint_every: u64,
}

fn default_lm_tau() -> f64 {
    LmOptions::default().tau
}

pub const DEFAULT_LOG_EVERY: u64 = 100;
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 5000;

impl Default for NetworkSpec {
    /// The paper's 4 × 40 tanh network, Glorot-normal, seed 0.
    fn default() -> Self {
        NetworkSpec {
            widths: vec![40; 4],
            activation: Activation::Tanh,
            init: Init::GlorotNormal,
            seed: 0,
        }
    }
}

impl Default for PointsSpec {
    fn default() -> Self {
        PointsSpec {
            kind: "endpoints".into(),
            n: 1024,
        }
    }
}

impl Default for TrainingSpec {
    /// The fig4-darcy preset's training.
    fn default() -> Self {
        TrainingSpec {
            schedule: FIG4_ADAM_DARCY.into(),
            lambda: 2.0,
            trials: 10,
            dtype: "f64".into(),
            lbfgs_memory: 50,
            lm_space: SolveSpace::Auto,
            lm_damping: Damping::Marquardt,
            lm_tau: default_lm_tau(),
            log_every: DEFAULT_LOG_EVERY,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
        }
    }
}

/// A run file may leave out any table but [problem].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    problem: ProblemConfig,
    network: Option<NetworkSpec>,
    points: Option<PointsSpec>,
    training: Option<TrainingSpec>,
}

const FIG4_ADAM_POISSON: &str = "10000@1e-4,10000@1e-5,20000@1e-6,20000@1e-7,lbfgs:15000";
const FIG4_ADAM_DARCY: &str = "10000@1e-3,10000@1e-4,20000@1e-5,20000@1e-6,lbfgs:15000";
const FIG4_REGRESSION: &str = "20000@1e-2,10000@1e-3,lbfgs:15000";

/// The paper's setups. λ = 2 reproduces the boundary term ½(u(−π)² + u(π)²) of section 4.2's
/// losses under eq. (7)'s (λ/N_b) Σ ½ r_b² with N_b = 2; eq. (5)'s ¼λ(…) is λ = 100 as printed.
pub fn preset_spec(name: &str) -> Result<TrainSpec> {
    let net = |w: usize, d: usize| NetworkSpec {
        widths: vec![w; d],
        activation: Activation::Tanh,
        init: Init::GlorotNormal,
        seed: 0,
    };
    let tr = |schedule: &str, lambda: f64, trials: usize| TrainingSpec {
        schedule: schedule.into(),
        lambda,
        trials,
        dtype: "f64".into(),
        lbfgs_memory: 50,
        lm_space: SolveSpace::Auto,
        lm_damping: Damping::Marquardt,
        lm_tau: default_lm_tau(),
        log_every: DEFAULT_LOG_EVERY,
        checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
    };
    let pts = |n: usize| PointsSpec {
        kind: "endpoints".into(),
        n,
    };
    let eps = Some(1.0 / 32.0);
    Ok(match name {
        // N = ⌈2π/(ε/2)⌉ = 403 equispaced points at ε = 1/32.
        "fig4-regression" => TrainSpec {
            problem: ProblemConfig::from_preset("twoscale-regression", eps),
            network: net(40, 4),
            points: pts(403),
            training: tr(FIG4_REGRESSION, 0.0, 10),
        },
        "fig4-poisson" => TrainSpec {
            problem: ProblemConfig::from_preset("twoscale-poisson", eps),
            network: net(40, 4),
            points: pts(1024),
            training: tr(FIG4_ADAM_POISSON, 2.0, 10),
        },
        "fig4-darcy" => TrainSpec {
            problem: ProblemConfig::from_preset("twoscale-darcy", eps),
            network: net(40, 4),
            points: pts(1024),
            training: tr(FIG4_ADAM_DARCY, 2.0, 10),
        },
        "freq" => TrainSpec {
            problem: ProblemConfig::from_preset("fp-poisson", None),
            network: net(60, 4),
            points: pts(512),
            training: tr("10000@1e-3", 100.0, 1),
        },
        other => bail!(
            "unknown training preset {other:?}; known: fig4-regression, fig4-poisson, fig4-darcy, freq"
        ),
    })
}

/// Changes to a spec; `None` keeps the spec's value. `mspinn train` builds one from its flags,
/// `reproduce` and `freq` change specs directly.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub eps: Option<f64>,
    /// Hidden widths (takes precedence over `depth` and `width`).
    pub widths: Option<Vec<usize>>,
    pub depth: Option<usize>,
    pub width: Option<usize>,
    pub activation: Option<Activation>,
    pub init: Option<Init>,
    pub nc: Option<usize>,
    pub points: Option<PointsKind>,
    pub lambda: Option<f64>,
    /// Phases, as `--schedule` takes them.
    pub schedule: Option<String>,
    /// Cap on every lbfgs phase's iterations.
    pub lbfgs_iters: Option<u64>,
    pub lm_space: Option<SolveSpace>,
    pub lm_damping: Option<Damping>,
    pub lm_tau: Option<f64>,
    pub trials: Option<usize>,
    pub seed: Option<u64>,
    pub dtype: Option<Precision>,
    /// `--log-every` and `--checkpoint-every`: stored in config.toml, so a resume keeps them;
    /// a resume may change them.
    pub log_every: Option<u64>,
    pub checkpoint_every: Option<u64>,
}

impl Overrides {
    fn apply_logging(&self, t: &mut TrainingSpec) {
        if let Some(n) = self.log_every {
            t.log_every = n;
        }
        if let Some(n) = self.checkpoint_every {
            t.checkpoint_every = n;
        }
    }

    /// The flags of the overrides that would change what a run already computed: all but
    /// `--schedule` and `--trials`.
    fn changing(&self) -> Vec<&'static str> {
        [
            ("--eps", self.eps.is_some()),
            ("--widths", self.widths.is_some()),
            ("--depth", self.depth.is_some()),
            ("--width", self.width.is_some()),
            ("--activation", self.activation.is_some()),
            ("--init", self.init.is_some()),
            ("--nc", self.nc.is_some()),
            ("--points", self.points.is_some()),
            ("--lambda", self.lambda.is_some()),
            ("--lbfgs-iters", self.lbfgs_iters.is_some()),
            ("--lm-space", self.lm_space.is_some()),
            ("--lm-damping", self.lm_damping.is_some()),
            ("--lm-tau", self.lm_tau.is_some()),
            ("--seed", self.seed.is_some()),
            ("--dtype", self.dtype.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

impl TrainSpec {
    /// A TOML run file: its [problem], and the fig4-darcy preset's tables it leaves out.
    pub fn from_file(path: &Path) -> Result<TrainSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let f: RunFile = crate::config::parse_toml(&text, &path.display().to_string())?;
        let d = preset_spec("fig4-darcy")?;
        Ok(TrainSpec {
            problem: f.problem,
            network: f.network.unwrap_or(d.network),
            points: f.points.unwrap_or(d.points),
            training: f.training.unwrap_or(d.training),
        })
    }

    /// The spec of the run in `dir` (its config.toml), to continue it. A resumed run keeps the
    /// configuration it was started with: anything that would change what was already computed
    /// is refused rather than silently ignored. Only `schedule` (to append phases: more LM
    /// iterations on a finished run, say) and `trials` (to add trials) may be given.
    pub fn resume(dir: &Path, o: &Overrides) -> Result<TrainSpec> {
        let text = std::fs::read_to_string(dir.join("config.toml"))
            .with_context(|| format!("--resume {}: no config.toml there", dir.display()))?;
        let mut spec: TrainSpec =
            crate::config::parse_toml(&text, &format!("{}/config.toml", dir.display()))?;
        let given = o.changing();
        anyhow::ensure!(
            given.is_empty(),
            "--resume continues a run with the config.toml it was started with; {} would change it \
             (only --schedule, to append phases, and --trials, to add trials, may be given)",
            given.join(", ")
        );
        if let Some(t) = o.trials {
            // Trial k always has seed + k, so more trials add runs without touching the others.
            anyhow::ensure!(
                t >= spec.training.trials,
                "--resume with --trials {t}: the run has {} trials; a resume may add trials, \
                 not drop them",
                spec.training.trials
            );
            spec.training.trials = t;
        }
        o.apply_logging(&mut spec.training);
        if let Some(sc) = &o.schedule {
            let (was, now): (Schedule, Schedule) = (spec.training.schedule.parse()?, sc.parse()?);
            anyhow::ensure!(
                now.extends(&was),
                "--resume with --schedule {sc:?}: the run's schedule {was} must be its beginning \
                 (a resume may append phases, e.g. --schedule \"{was},lm:1000\", not change them)"
            );
            spec.training.schedule = now.to_string();
        }
        Ok(spec)
    }

    /// The spec with `o` applied.
    pub fn with_overrides(mut self, a: &Overrides) -> Result<TrainSpec> {
        let s = &mut self;
        if let Some(e) = a.eps {
            s.problem.eps = Some(NumberOrString::Number(e));
        }
        s.network.widths = match &a.widths {
            Some(w) => w.clone(),
            None => hidden_widths(None, a.depth, a.width, &s.network.widths)?,
        };
        if let Some(act) = a.activation {
            s.network.activation = act;
        }
        if let Some(i) = a.init {
            s.network.init = i;
        }
        if let Some(seed) = a.seed {
            s.network.seed = seed;
        }
        if let Some(n) = a.nc {
            s.points.n = n;
        }
        if let Some(k) = a.points {
            s.points.kind = k.name().into();
        }
        if let Some(l) = a.lambda {
            s.training.lambda = l;
        }
        if let Some(sc) = &a.schedule {
            s.training.schedule = sc.clone();
        }
        if let Some(cap) = a.lbfgs_iters {
            let mut sched: Schedule = s.training.schedule.parse()?;
            for p in &mut sched.phases {
                if let mspinn_train::Phase::Lbfgs { max_iters } = p {
                    *max_iters = cap;
                }
            }
            s.training.schedule = sched.to_string();
        }
        if let Some(v) = a.lm_space {
            s.training.lm_space = v;
        }
        if let Some(v) = a.lm_damping {
            s.training.lm_damping = v;
        }
        if let Some(t) = a.lm_tau {
            anyhow::ensure!(
                t.is_finite() && t > 0.0,
                "--lm-tau {t}: the initial damping must be finite and > 0"
            );
            s.training.lm_tau = t;
        }
        if let Some(t) = a.trials {
            s.training.trials = t;
        }
        if let Some(d) = a.dtype {
            s.training.dtype = d.name().into();
        }
        a.apply_logging(&mut s.training);
        Ok(self)
    }
}
