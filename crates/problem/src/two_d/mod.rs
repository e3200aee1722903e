//! Two-dimensional Darcy problems: −∇·(a(x/ε)∇u) = f on a rectangle, u = g on its boundary.
//!
//! The pieces mirror the 1-D crate: a periodic coefficient a(y₁, y₂) with symbolic gradient
//! ([`Coefficient2d`]), the problem and its residual rows ([`Problem2d`],
//! [`LinearResidual2d`]), its TOML table ([`Problem2dConfig`]), and collocation and boundary
//! sets ([`collocation_2d`], [`boundary_points`]), and the reference a trained network is
//! measured against: a finite-volume solution with a measured resolution rule
//! ([`Problem2d::solve_fv`], [`cells_per_period`]), and the homogenised tensor and solution
//! ([`Coefficient2d::homogenized_tensor`], [`Problem2d::homogenized_solution`]).

mod anisotropic;
mod cell;
mod coefficient2d;
mod config2d;
mod expr2;
mod fv;
mod homogenized2d;
mod points2d;
mod problem2d;
mod reference2d;
mod residual2d;

pub use anisotropic::solve_dirichlet_tensor;
pub use cell::{Tensor2, CELL_PROBLEM_CELLS};
pub use coefficient2d::{
    Coefficient2d, CoefficientMin2d, COEFFICIENT_2D_NAMES, POSITIVITY_SCAN_2D,
};
pub use config2d::{NumberExpr, Problem2dConfig};
pub use expr2::ScalarFn2;
pub use fv::{solve_dirichlet, FvGrid, FvSolution, MAX_UNKNOWNS};
pub use homogenized2d::OFF_DIAGONAL_TOLERANCE;
pub use points2d::{
    boundary_points, collocation_2d, parse_point_kind_2d, PointSpec2d, POINT_KINDS_2D,
};
pub use problem2d::{Forcing2d, Problem2d, Rect};
pub use reference2d::{
    cells_per_period, FV_ERROR_CONSTANT, MIN_CELLS_PER_PERIOD, MIN_CELLS_PER_SIDE, REFERENCE_MARGIN,
};
pub use residual2d::LinearResidual2d;
