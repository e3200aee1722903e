//! The operator exists twice: in Rust (src/operator.rs, used by every Rust path) and in the CUDA
//! header (src/residual_common.cuh). build.rs compiles the header's per-row functions for the
//! host; this test holds them to the Rust ones bit for bit, in f64 and f32, on random rows that
//! span many orders of magnitude (where a changed order of operations shows in the last bits).

use mspinn_kernels::operator::{loss_slope, loss_term, residual};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[cfg(mspinn_host_header)]
mod header {
    // Linked from the static library build.rs makes (bundled into mspinn-kernels).
    extern "C" {
        pub fn mspinn_host_residual_f64(
            jets: *const f64,
            consts: *const f64,
            n: usize,
            i: usize,
        ) -> f64;
        pub fn mspinn_host_residual_f32(
            jets: *const f32,
            consts: *const f32,
            n: usize,
            i: usize,
        ) -> f32;
        pub fn mspinn_host_loss_term_f64(w: f64, r: f64) -> f64;
        pub fn mspinn_host_loss_term_f32(w: f32, r: f32) -> f32;
        pub fn mspinn_host_loss_slope_f64(w: f64, r: f64) -> f64;
        pub fn mspinn_host_loss_slope_f32(w: f32, r: f32) -> f32;
    }
}

/// A value of random sign and magnitude 10^[-6, 6].
fn wide(rng: &mut ChaCha8Rng) -> f64 {
    let m: f64 = rng.random_range(-1.0..1.0);
    m * 10f64.powf(rng.random_range(-6.0..6.0))
}

#[cfg(mspinn_host_header)]
#[test]
fn cuda_header_computes_the_rust_operator_bit_for_bit() {
    use header::*;
    let n = 4096;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let jets: Vec<f64> = (0..3 * n).map(|_| wide(&mut rng)).collect();
    let consts: Vec<f64> = (0..5 * n).map(|_| wide(&mut rng)).collect();
    let (j32, c32): (Vec<f32>, Vec<f32>) = (
        jets.iter().map(|&v| v as f32).collect(),
        consts.iter().map(|&v| v as f32).collect(),
    );
    let mut differ_from_other_order = 0;
    for i in 0..n {
        let r = residual(
            jets[i],
            jets[n + i],
            jets[2 * n + i],
            consts[i],
            consts[n + i],
            consts[2 * n + i],
            consts[3 * n + i],
        );
        // SAFETY: the buffers hold 3n and 5n values and i < n, as the header's indexing needs.
        let h = unsafe { mspinn_host_residual_f64(jets.as_ptr(), consts.as_ptr(), n, i) };
        assert_eq!(
            r.to_bits(),
            h.to_bits(),
            "f64 residual of row {i}: {r:e} vs {h:e}"
        );
        let r32 = residual(
            j32[i],
            j32[n + i],
            j32[2 * n + i],
            c32[i],
            c32[n + i],
            c32[2 * n + i],
            c32[3 * n + i],
        );
        // SAFETY: as above.
        let h32 = unsafe { mspinn_host_residual_f32(j32.as_ptr(), c32.as_ptr(), n, i) };
        assert_eq!(r32.to_bits(), h32.to_bits(), "f32 residual of row {i}");
        let w = consts[4 * n + i].abs();
        // SAFETY: plain scalar functions.
        unsafe {
            assert_eq!(
                loss_term(w, r).to_bits(),
                mspinn_host_loss_term_f64(w, r).to_bits()
            );
            assert_eq!(
                loss_slope(w, r).to_bits(),
                mspinn_host_loss_slope_f64(w, r).to_bits()
            );
            let (w32, r32) = (w as f32, r as f32);
            assert_eq!(
                loss_term(w32, r32).to_bits(),
                mspinn_host_loss_term_f32(w32, r32).to_bits()
            );
            assert_eq!(
                loss_slope(w32, r32).to_bits(),
                mspinn_host_loss_slope_f32(w32, r32).to_bits()
            );
        }
        // The check has teeth: another association of the same sum differs in many rows.
        let other = consts[2 * n + i] * jets[2 * n + i]
            + (consts[n + i] * jets[n + i] + consts[i] * jets[i])
            - consts[3 * n + i];
        if other.to_bits() != r.to_bits() {
            differ_from_other_order += 1;
        }
    }
    assert!(
        differ_from_other_order > n / 10,
        "only {differ_from_other_order} of {n} rows tell the two orders apart"
    );
}

#[cfg(not(mspinn_host_header))]
#[test]
fn cuda_header_computes_the_rust_operator_bit_for_bit() {
    panic!(
        "kernels/build.rs could not compile the CUDA header for the host (no C++ compiler; see the \
         build warning): install g++ and rebuild"
    );
}
