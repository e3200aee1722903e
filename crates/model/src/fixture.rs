//! Small problems and networks for tests, examples and benchmarks: one builder instead of a copy
//! of "preset → points → rows → residual set" in every test file.
//!
//! ```
//! use mspinn_model::fixture::{net, Fixture};
//! use mspinn_model::{Activation, DType};
//! let set = Fixture::new("twoscale-darcy").eps(1.0 / 8.0).endpoints(64).lambda(5.0).set()?;
//! let mlp = net(&[10, 10], Activation::Tanh, 7, DType::F64)?;
//! assert_eq!(set.len(), 66);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use candle_core::{DType, Device};
use mspinn_problem::{collocation, LinearResidual, PointSpec, Problem, ScalarFn};

use crate::{Activation, Init, Mlp, MlpConfig, ResidualSet};

/// What a fixture can fail with (bad preset, expression or size): the caller's bug, reported.
pub type FixtureResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Where the PDE rows sit.
#[derive(Clone, Debug)]
enum Points {
    Spec(PointSpec),
    At(Vec<f64>),
}

/// A residual set built from a problem preset; every setting has a default.
#[derive(Clone, Debug)]
pub struct Fixture {
    preset: String,
    eps: Option<f64>,
    forcing: Option<String>,
    points: Points,
    boundary: bool,
    lambda: f64,
    dtype: DType,
    device: Device,
}

impl Fixture {
    /// `preset` (a `Problem::preset` name) on 32 midpoints with its boundary rows, λ = 1, f64, CPU.
    pub fn new(preset: &str) -> Self {
        Self {
            preset: preset.into(),
            eps: None,
            forcing: None,
            points: Points::Spec(PointSpec::Midpoints(32)),
            boundary: true,
            lambda: 1.0,
            dtype: DType::F64,
            device: Device::Cpu,
        }
    }
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = Some(eps);
        self
    }
    /// Replaces the preset's forcing f(x) by an expression in x.
    pub fn forcing(mut self, f: &str) -> Self {
        self.forcing = Some(f.into());
        self
    }
    /// n equispaced points including both ends.
    pub fn endpoints(mut self, n: usize) -> Self {
        self.points = Points::Spec(PointSpec::Endpoints(n));
        self
    }
    /// The midpoints of n equal cells.
    pub fn midpoints(mut self, n: usize) -> Self {
        self.points = Points::Spec(PointSpec::Midpoints(n));
        self
    }
    /// PDE rows at exactly these points.
    pub fn at(mut self, x: &[f64]) -> Self {
        self.points = Points::At(x.to_vec());
        self
    }
    /// PDE rows only.
    pub fn no_boundary(mut self) -> Self {
        self.boundary = false;
        self
    }
    pub fn lambda(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
    pub fn device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// The problem with this fixture's ε and forcing.
    pub fn problem(&self) -> FixtureResult<Problem> {
        let mut p = Problem::preset(&self.preset, self.eps)?;
        if let Some(f) = &self.forcing {
            p.forcing = ScalarFn::parse(f, "x")?;
        }
        Ok(p)
    }

    /// The residual set: PDE rows, then the boundary rows unless [`Self::no_boundary`].
    pub fn set(&self) -> FixtureResult<ResidualSet> {
        let p = self.problem()?;
        let x = match &self.points {
            Points::Spec(spec) => collocation(p.domain, *spec)?,
            Points::At(x) => x.clone(),
        };
        let bc = if self.boundary {
            p.boundary_rows()
        } else {
            LinearResidual {
                x: vec![],
                c0: vec![],
                c1: vec![],
                c2: vec![],
                g: vec![],
            }
        };
        Ok(ResidualSet::new(
            &p.pde_rows(&x)?,
            &bc,
            self.lambda,
            self.dtype,
            &self.device,
        )?)
    }
}

/// A Glorot-normal network with these hidden widths on the CPU.
pub fn net(hidden: &[usize], act: Activation, seed: u64, dtype: DType) -> FixtureResult<Mlp> {
    net_with(hidden, act, Init::GlorotNormal, seed, dtype)
}

/// [`net`] with another initialisation.
pub fn net_with(
    hidden: &[usize],
    act: Activation,
    init: Init,
    seed: u64,
    dtype: DType,
) -> FixtureResult<Mlp> {
    Ok(Mlp::new(
        MlpConfig::new(hidden.to_vec(), act, init, seed),
        dtype,
        &Device::Cpu,
    )?)
}
