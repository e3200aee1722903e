//! `mspinn.Problem` — a preset, a TOML file's `[problem]` table, or keyword arguments with
//! expressions, all through [`ProblemConfig`] as `mspinn --config` builds them — and
//! `mspinn.solve`, the reference solver of `mspinn solve`.

use std::path::PathBuf;

use mspinn_problem::{
    collocation, NumberOrString, OperatorKind, Problem as RsProblem, ProblemConfig,
};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use serde::Deserialize;

use crate::args;
use crate::background::run_watched;
use crate::errors::{arg, Result};

/// A boundary value problem −(a(x/ε) u')' = f on (a, b) with Dirichlet data (``darcy``), or the
/// paper's ``poisson`` (−u'' = f) and ``regression`` (u = f) baselines.
///
/// Build one with ``Problem(kind, forcing, eps=..., coefficient=..., ...)``,
/// ``Problem.preset(name, eps)``, ``Problem.from_toml(path)`` or ``Problem.for_ntk(eps)``.
/// Numbers may be given as strings like ``"1/32"``, ``"pi"`` or ``"2*pi"``; expressions are
/// parsed as in the CLI's config files (write ``0.001``, not ``1e-3``).
#[pyclass(module = "mspinn._core", frozen)]
pub struct Problem {
    pub inner: RsProblem,
}

/// A run file: its `[problem]` table (the other tables are for `mspinn train`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    problem: ProblemConfig,
    #[allow(dead_code)]
    network: Option<toml::Value>,
    #[allow(dead_code)]
    points: Option<toml::Value>,
    #[allow(dead_code)]
    training: Option<toml::Value>,
}

fn pair(
    v: Option<(Bound<'_, PyAny>, Bound<'_, PyAny>)>,
    field: &'static str,
) -> Result<Option<[NumberOrString; 2]>> {
    v.map(|(a, b)| {
        Ok([
            args::number_or_string(&a, field)?,
            args::number_or_string(&b, field)?,
        ])
    })
    .transpose()
}

#[pymethods]
impl Problem {
    /// A problem from its fields, as a config file's ``[problem]`` table gives them.
    ///
    /// ``kind``: ``"darcy"``, ``"poisson"`` or ``"regression"``; ``forcing``: f(x) (the target
    /// for regression), may use ``eps`` and ``pi``; ``coefficient``: a(y) for darcy, an
    /// expression in y or ``"paper-4.1"`` / ``"paper-4.2"``; ``period``: its period in y
    /// (default 1); ``domain`` (default (−π, π)); ``boundary``: u(a), u(b) (default 0, 0);
    /// ``exact``: the exact u(x), when known (else the quadrature solver is the reference).
    #[new]
    #[pyo3(signature = (kind, forcing, *, eps=None, coefficient=None, period=None, domain=None, boundary=None, exact=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        kind: &str,
        forcing: String,
        eps: Option<Bound<'_, PyAny>>,
        coefficient: Option<String>,
        period: Option<Bound<'_, PyAny>>,
        domain: Option<(Bound<'_, PyAny>, Bound<'_, PyAny>)>,
        boundary: Option<(Bound<'_, PyAny>, Bound<'_, PyAny>)>,
        exact: Option<String>,
    ) -> PyResult<Self> {
        let kind: OperatorKind = kind.parse().map_err(|e: mspinn_problem::ProblemError| {
            crate::errors::Error::from(e.in_field("kind"))
        })?;
        let cfg = ProblemConfig {
            preset: None,
            kind: Some(kind),
            domain: pair(domain, "domain")?,
            eps: eps.map(|e| args::number_or_string(&e, "eps")).transpose()?,
            coefficient,
            period: period
                .map(|p| args::number_or_string(&p, "period"))
                .transpose()?,
            forcing: Some(forcing),
            boundary: pair(boundary, "boundary")?,
            exact,
        };
        Ok(Self {
            inner: cfg.build(None).map_err(crate::errors::Error::from)?,
        })
    }

    /// A problem of the paper: ``fp-poisson``, ``twoscale-regression``, ``twoscale-poisson``,
    /// ``twoscale-darcy`` (ε default 1/32) or ``ntk-4.1`` (ε default 1/10).
    #[staticmethod]
    #[pyo3(signature = (name, eps=None))]
    fn preset(name: &str, eps: Option<Bound<'_, PyAny>>) -> PyResult<Self> {
        let eps = args::eps(eps.as_ref())?;
        Ok(Self {
            inner: ProblemConfig::from_preset(name, eps)
                .build(None)
                .map_err(crate::errors::Error::from)?,
        })
    }

    /// The ``[problem]`` table of a TOML run file (the format of ``mspinn --config``; the
    /// ``[network]``, ``[points]`` and ``[training]`` tables may be there and are not read).
    /// ``eps`` overrides the file's, as ``--eps`` does.
    #[staticmethod]
    #[pyo3(signature = (path, eps=None))]
    fn from_toml(path: PathBuf, eps: Option<Bound<'_, PyAny>>) -> PyResult<Self> {
        let eps = args::eps(eps.as_ref())?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            pyo3::exceptions::PyOSError::new_err(format!("cannot read {}: {e}", path.display()))
        })?;
        let file: RunFile =
            toml::from_str(&text).map_err(|e| arg("path", format!("{}: {e}", path.display())))?;
        Ok(Self {
            inner: file
                .problem
                .build(eps)
                .map_err(crate::errors::Error::from)?,
        })
    }

    /// The problem ``mspinn ntk`` measures: section 4.1's Darcy operator with a = ``coef``
    /// (``paper-4.1``, ``paper-4.2`` or an expression in y of period 1), or ``operator="poisson"``,
    /// on (−π, π) with zero Dirichlet data.
    #[staticmethod]
    #[pyo3(signature = (eps, coef="paper-4.1", operator="darcy"))]
    fn for_ntk(eps: Bound<'_, PyAny>, coef: &str, operator: &str) -> PyResult<Self> {
        let eps = args::eps(Some(&eps))?.unwrap_or(0.1);
        let kind: OperatorKind = operator
            .parse()
            .map_err(|e: mspinn_problem::ProblemError| {
                crate::errors::Error::from(e.in_field("operator"))
            })?;
        Ok(Self {
            inner: RsProblem::for_ntk(kind, coef, eps).map_err(crate::errors::Error::from)?,
        })
    }

    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }
    /// ``"darcy"``, ``"poisson"`` or ``"regression"``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.name()
    }
    #[getter]
    fn eps(&self) -> Option<f64> {
        self.inner.eps
    }
    #[getter]
    fn domain(&self) -> (f64, f64) {
        self.inner.domain
    }
    #[getter]
    fn boundary(&self) -> (f64, f64) {
        self.inner.boundary
    }
    /// ā, the harmonic mean of a over one period (None without a coefficient).
    #[getter]
    fn homogenized_coefficient(&self) -> PyResult<Option<f64>> {
        Ok(self
            .inner
            .homogenized_coefficient()
            .map_err(crate::errors::Error::from)?)
    }

    /// The collocation points of ``mspinn train`` / ``mspinn ntk``: ``n`` points laid out as
    /// ``"endpoints"`` (equispaced, both ends), ``"midpoints"`` or ``"random"`` (from ``seed``).
    #[pyo3(signature = (n, points="endpoints", seed=0))]
    fn collocation<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        points: &str,
        seed: u64,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let spec = args::points(points, n, seed)?;
        let x = collocation(self.inner.domain, spec).map_err(crate::errors::Error::from)?;
        Ok(x.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        let p = &self.inner;
        format!(
            "Problem(name={:?}, kind={:?}, eps={}, domain=({}, {}))",
            p.name,
            p.kind.name(),
            p.eps.map_or("None".into(), |e| e.to_string()),
            p.domain.0,
            p.domain.1
        )
    }
}

/// The reference solution of ``mspinn solve``: ``points`` equispaced x (both ends), u and u'
/// there (closed form, or adaptive Gauss–Legendre quadrature), and the homogenised ū (``None``
/// for a problem without one). The GIL is released while it solves.
#[pyfunction]
#[pyo3(signature = (problem, points=1000))]
#[allow(clippy::type_complexity)]
pub fn solve<'py>(
    py: Python<'py>,
    problem: &Problem,
    points: usize,
) -> PyResult<(
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Option<Bound<'py, PyArray1<f64>>>,
)> {
    if points < 2 {
        return Err(arg("points", format!("{points}: at least 2")).into());
    }
    {
        use mspinn_model::size_plan::{available_memory, check_fits, solve_bytes};
        check_fits(
            &format!("points = {points}"),
            solve_bytes(points as u128),
            available_memory(),
            "lower points",
        )
        .map_err(crate::errors::Error::from)?;
    }
    let p = &problem.inner;
    let solved = run_watched(py, None, |_| -> Result<_> {
        let x = collocation(p.domain, mspinn_problem::PointSpec::Endpoints(points))?;
        let sol = p.reference_solution(&x)?;
        let ubar = p.homogenized_solution(&x)?;
        Ok((x, sol, ubar))
    })??;
    let (x, sol, ubar) = solved;
    let (u, du): (Vec<f64>, Vec<f64>) = sol.into_iter().unzip();
    Ok((
        x.into_pyarray(py),
        u.into_pyarray(py),
        du.into_pyarray(py),
        ubar.map(|v| v.into_pyarray(py)),
    ))
}
