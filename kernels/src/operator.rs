//! The operator, written once in Rust: the residual row of every problem kind and its loss term.
//!
//! mspinn-problem reduces Darcy, Poisson, regression and boundary rows to
//! r = c2 u'' + c1 u' + c0 u − g (Darcy: c2 = −a(x/ε), c1 = −a'(x/ε)/ε), and eq. (7) weighs each
//! row's ½ r² by w (1/N_c or λ/N_b). Every Rust path — the CPU engine's tiles, the fused op's host
//! arithmetic — calls these functions; the only other copy is `residual_common.cuh` for CUDA,
//! and `tests/operator_header.rs` compiles that header for the host and holds the two together
//! bit for bit. The order of operations is part of the definition: both copies evaluate
//! left to right as written here, and the CUDA side is compiled with `-fmad=false`.

use crate::Real;

/// r = ((c2 u'' + c1 u') + c0 u) − g.
#[inline(always)]
pub fn residual<T: Real>(u: T, du: T, d2u: T, c0: T, c1: T, c2: T, g: T) -> T {
    c2 * d2u + c1 * du + c0 * u - g
}

/// ρ = w r, the derivative of the loss term w ½ r² with respect to r: the seed of the reverse
/// sweep (times c0, c1, c2 it is the adjoint of u, u', u'').
#[inline(always)]
pub fn loss_slope<T: Real>(w: T, r: T) -> T {
    w * r
}

/// The row's loss term w ½ r², as ½ ρ r with ρ = [`loss_slope`].
#[inline(always)]
pub fn loss_term<T: Real>(w: T, r: T) -> T {
    T::HALF * loss_slope(w, r) * r
}
