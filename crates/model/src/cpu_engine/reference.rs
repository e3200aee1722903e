//! The engine's per-element tanh jet math one value at a time, with the FMA choice the engine
//! makes on this CPU: the reference the GPU header's `__host__ __device__` functions
//! (kernels/src/jets_common.cuh) are tested against, so the device math is proven on the host.

use super::tile::{jet_bwd, jet_fwd, Tanh};
use super::{isa, Isa};
use crate::Real;

fn fma_path() -> bool {
    isa() != Isa::Base
}

/// (a, a', a'', σ', σ'') of a hidden tanh layer from (z, z', z'').
pub fn tanh_jet_fwd<T: Real>(z0: T, z1: T, z2: T) -> [T; 5] {
    let (a, b, c, d, e) = if fma_path() {
        jet_fwd::<T, Tanh, true>(z0, z1, z2)
    } else {
        jet_fwd::<T, Tanh, false>(z0, z1, z2)
    };
    [a, b, c, d, e]
}

/// (z̄, z̄', z̄'') from the activation adjoints and the forward's (t, σ', σ''), z', z''.
pub fn tanh_jet_bwd<T: Real>(ab: [T; 3], fwd: [T; 3], z1: T, z2: T) -> [T; 3] {
    let (ab, fwd) = ((ab[0], ab[1], ab[2]), (fwd[0], fwd[1], fwd[2]));
    let (a, b, c) = if fma_path() {
        jet_bwd::<T, Tanh, true>(ab, fwd, z1, z2)
    } else {
        jet_bwd::<T, Tanh, false>(ab, fwd, z1, z2)
    };
    [a, b, c]
}
