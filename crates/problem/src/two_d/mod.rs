//! Two-dimensional Darcy problems: −∇·(a(x/ε)∇u) = f on a rectangle, u = g on its boundary.
//!
//! The pieces mirror the 1-D crate: a periodic coefficient a(y₁, y₂) with symbolic gradient
//! ([`Coefficient2d`]), the problem and its residual rows ([`Problem2d`],
//! [`LinearResidual2d`]), its TOML table ([`Problem2dConfig`]), and collocation and boundary
//! sets ([`collocation_2d`], [`boundary_points`]).

mod coefficient2d;
mod config2d;
mod expr2;
mod points2d;
mod problem2d;
mod residual2d;

pub use coefficient2d::{
    Coefficient2d, CoefficientMin2d, COEFFICIENT_2D_NAMES, POSITIVITY_SCAN_2D,
};
pub use config2d::{NumberExpr, Problem2dConfig};
pub use expr2::ScalarFn2;
pub use points2d::{
    boundary_points, collocation_2d, parse_point_kind_2d, PointSpec2d, POINT_KINDS_2D,
};
pub use problem2d::{Forcing2d, Problem2d, Rect};
pub use residual2d::LinearResidual2d;
