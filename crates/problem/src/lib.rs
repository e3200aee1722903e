//! Boundary value problems for mspinn, with no tensors: −(a(x/ε) u')' = f on (a, b) with
//! Dirichlet data (Darcy), the Poisson and regression baselines of the paper, the periodic
//! coefficients, collocation sets, and the reference solutions (exact, by quadrature, and
//! homogenised) that every trained network is measured against.
//!
//! Everything a residual needs is reduced here to numbers per collocation point
//! ([`LinearResidual`]), so the model crate never evaluates a user expression.

mod coefficient;
mod config;
mod error;
mod expr;
mod homogenized;
mod points;
mod presets;
mod problem;
mod quadrature;
mod reference;
mod residual;
pub mod two_d;

pub use coefficient::{Coefficient, CoefficientMin, COEFFICIENT_NAMES, POSITIVITY_SCAN_PER_PERIOD};
pub use config::{parse_number, NumberOrString, ProblemConfig};
pub use error::ProblemError;
pub use expr::ScalarFn;
pub use points::{collocation, parse_point_kind, PointSpec};
pub use presets::{
    APPENDIX_C_FORCING, APPENDIX_C_G, APPENDIX_C_H, FP_EXACT, FP_FORCING, TWOSCALE_DARCY_FORCING,
    TWOSCALE_EXACT, TWOSCALE_POISSON_FORCING,
};
pub use problem::{OperatorKind, Problem};
pub use reference::solve_darcy;
pub use residual::LinearResidual;
pub use two_d::{
    boundary_points, cells_per_period, collocation_2d, parse_point_kind_2d, Coefficient2d,
    LinearResidual2d, PointSpec2d, Problem2d, Problem2dConfig, Rect, ScalarFn2,
};
