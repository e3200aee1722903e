//! The problems of the paper, by name.

use std::f64::consts::PI;

use crate::coefficient::Coefficient;
use crate::error::ProblemError;
use crate::expr::ScalarFn;
use crate::problem::{OperatorKind, Problem};

const PRESET_NAMES: &[&str] = &[
    "fp-poisson",
    "twoscale-regression",
    "twoscale-poisson",
    "twoscale-darcy",
    "ntk-4.1",
];

/// Eq. (4), the frequency-principle example (Fig. 1).
pub const FP_FORCING: &str = "sin(x) + sin(5*x) + sin(15*x) + sin(55*x)";
pub const FP_EXACT: &str = "sin(x) + sin(5*x)/25 + sin(15*x)/225 + sin(55*x)/3025";

/// Eq. (25), the two-scale function u^ε.
pub const TWOSCALE_EXACT: &str = "sin(2*x) + eps*sin(x/eps) - (eps/pi)*sin(pi/eps)*x";
/// Eq. (26), −u'' of eq. (25).
pub const TWOSCALE_POISSON_FORCING: &str = "4*sin(2*x) + sin(x/eps)/eps";
macro_rules! appendix_c_g {
    () => {
        "10*(20*pi + 168*pi*eps*cos(x)*sin(x) \
         - 20*(2*pi - 4*pi*cos(x)^2 + eps*sin(pi/eps))*cos(x/eps) \
         + (21*pi + 160*pi*eps*cos(x)*sin(x))*sin(x/eps))"
    };
}
macro_rules! appendix_c_h {
    () => {
        "400*pi*eps*sin(x/eps)^2 + 840*pi*eps*sin(x/eps) + 441*pi*eps"
    };
}

/// Appendix C's g^ε, as printed.
pub const APPENDIX_C_G: &str = appendix_c_g!();
/// Appendix C's h^ε, as printed.
pub const APPENDIX_C_H: &str = appendix_c_h!();
/// Appendix C's f^ε = g^ε/h^ε exactly as printed. Kept for the record and the tests; the
/// `twoscale-darcy` preset uses [`TWOSCALE_DARCY_FORCING`].
pub const APPENDIX_C_FORCING: &str = concat!("(", appendix_c_g!(), ")/(", appendix_c_h!(), ")");
/// The forcing of `twoscale-darcy`: appendix C's g^ε/h^ε with h^ε written as the identical
/// 100πε(2.1 + 2 sin(x/ε))². As printed, h^ε is a sum of three terms that cancel to ~1/441 of
/// their size where sin(x/ε) ≈ −1, exactly where f^ε peaks; that rounding noise, integrated over
/// ~1/ε peaks, capped the reference solver at ~3e-10 relative error for ε = 1/1000 (5e-11 with
/// the factored form). A test checks this form equals −(a u')' of eq. (25).
pub const TWOSCALE_DARCY_FORCING: &str = concat!(
    "(",
    appendix_c_g!(),
    ")/(100*pi*eps*(2.1 + 2*sin(x/eps))^2)"
);

/// Section 4.2 uses ε = 1/32.
const TWOSCALE_EPS: f64 = 1.0 / 32.0;
/// Fig. 2 sweeps ε from 1/10 to 1/100; 1/10 is the start.
const NTK_EPS: f64 = 1.0 / 10.0;

impl Problem {
    /// The paper's problems: `fp-poisson` (eq. 4), `twoscale-regression` / `twoscale-poisson` /
    /// `twoscale-darcy` (eqs. 25–27, ε default 1/32), `ntk-4.1` (section 4.1, ε default 1/10).
    /// The result is validated.
    pub fn preset(name: &str, eps: Option<f64>) -> Result<Problem, ProblemError> {
        let domain = (-PI, PI);
        let problem = match name {
            "fp-poisson" => {
                if let Some(eps) = eps {
                    return Err(ProblemError::PresetHasNoEps {
                        name: name.to_owned(),
                        eps,
                    });
                }
                Problem {
                    name: name.to_owned(),
                    kind: OperatorKind::Poisson,
                    domain,
                    eps: None,
                    coef: None,
                    forcing: parse("forcing", FP_FORCING, &[])?,
                    boundary: (0.0, 0.0),
                    exact: Some(parse("exact", FP_EXACT, &[])?),
                    homogenization: None,
                }
            }
            "twoscale-regression" | "twoscale-poisson" | "twoscale-darcy" => {
                let eps = checked_eps(eps.unwrap_or(TWOSCALE_EPS))?;
                twoscale(name, eps)?
            }
            "ntk-4.1" => Problem {
                name: name.to_owned(),
                kind: OperatorKind::Darcy,
                domain,
                eps: Some(checked_eps(eps.unwrap_or(NTK_EPS))?),
                coef: Some(Coefficient::paper_4_1()),
                // The NTK does not depend on f.
                forcing: ScalarFn::constant(1.0),
                boundary: (0.0, 0.0),
                exact: None,
                homogenization: None,
            },
            _ => {
                return Err(ProblemError::UnknownPreset {
                    name: name.to_owned(),
                    known: PRESET_NAMES.join(", "),
                })
            }
        };
        problem.validate()?;
        Ok(problem)
    }

    /// The problem `mspinn ntk` (and the Python package's `Problem.for_ntk`) measures the NTK
    /// of: section 4.1's setting on (−π, π) with zero Dirichlet data — the Darcy operator with
    /// a = `coef` (paper-4.1, paper-4.2 or an expression in y of period 1), or the Poisson
    /// operator (no coefficient). The forcing is the constant 1: the NTK does not depend on it.
    /// One function for both front ends, so their kernels agree bit for bit.
    pub fn for_ntk(kind: OperatorKind, coef: &str, eps: f64) -> Result<Problem, ProblemError> {
        let mut p = Problem::preset("ntk-4.1", Some(eps))?;
        match kind {
            OperatorKind::Darcy => {
                p.coef = Some(Coefficient::from_name(coef).map_err(|e| e.in_field("coef"))?);
                p.name = format!("darcy, a = {coef}");
            }
            OperatorKind::Poisson => {
                p.kind = OperatorKind::Poisson;
                p.coef = None;
                p.name = "poisson".into();
            }
            OperatorKind::Regression => {
                return Err(ProblemError::Unsupported {
                    field: "operator".into(),
                    value: "regression".into(),
                    reason: "the NTK here is that of a PDE's residuals: darcy or poisson".into(),
                })
            }
        }
        p.validate()?;
        Ok(p)
    }

    pub fn preset_names() -> &'static [&'static str] {
        PRESET_NAMES
    }
}

fn checked_eps(eps: f64) -> Result<f64, ProblemError> {
    if eps.is_finite() && eps > 0.0 {
        Ok(eps)
    } else {
        Err(ProblemError::InvalidValue {
            field: "eps".to_owned(),
            value: eps,
            requirement: "finite and > 0",
        })
    }
}

fn parse(field: &str, expr: &str, consts: &[(&str, f64)]) -> Result<ScalarFn, ProblemError> {
    ScalarFn::parse_with(expr, "x", consts).map_err(|e| e.in_field(field))
}

fn twoscale(name: &str, eps: f64) -> Result<Problem, ProblemError> {
    let consts = [("eps", eps)];
    let exact = parse("exact", TWOSCALE_EXACT, &consts)?;
    let darcy = Problem {
        name: "twoscale-darcy".to_owned(),
        kind: OperatorKind::Darcy,
        domain: (-PI, PI),
        eps: Some(eps),
        coef: Some(Coefficient::paper_4_2()),
        forcing: parse("forcing", TWOSCALE_DARCY_FORCING, &consts)?,
        boundary: (0.0, 0.0),
        exact: Some(exact.clone()),
        homogenization: None,
    };
    Ok(match name {
        "twoscale-regression" => Problem {
            name: name.to_owned(),
            kind: OperatorKind::Regression,
            forcing: exact.clone(),
            coef: None,
            homogenization: Some(Box::new(darcy.clone())),
            ..darcy
        },
        "twoscale-poisson" => Problem {
            name: name.to_owned(),
            kind: OperatorKind::Poisson,
            forcing: parse("forcing", TWOSCALE_POISSON_FORCING, &consts)?,
            coef: None,
            homogenization: Some(Box::new(darcy.clone())),
            ..darcy
        },
        _ => darcy,
    })
}
