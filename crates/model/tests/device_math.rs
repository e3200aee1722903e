//! The GPU engine's per-element jet math (kernels/src/jets_common.cuh, `__host__ __device__`)
//! compiled for the host and held to the CPU engine's (cpu_engine::reference, the formulas of its
//! tiles): the backward bit for bit (same operations, same fused multiply-adds), the forward to
//! 1e-13 (it contains tanh, where the CPU engine's branch-free tanh and libm's differ by ulps).

use mspinn_model::cpu_engine::reference::{tanh_jet_bwd, tanh_jet_fwd};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A value of random sign and magnitude 10^[lo, hi].
fn wide(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    let m: f64 = rng.random_range(-1.0..1.0);
    m * 10f64.powf(rng.random_range(lo..hi))
}

#[test]
fn header_jets_equal_the_cpu_engine() {
    use mspinn_kernels::host_header::HeaderFloat;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let fma = cfg!(target_arch = "x86_64") && {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    };
    let (mut worst_fwd, mut worst_bwd) = (0.0f64, 0.0f64);
    for _ in 0..20_000 {
        let z0: f64 = rng.random_range(-6.0..6.0);
        let (z1, z2) = (wide(&mut rng, -3.0, 3.0), wide(&mut rng, -3.0, 3.0));
        let e = tanh_jet_fwd(z0, z1, z2);
        let h = f64::jet_tanh_fwd(z0, z1, z2);
        // tanh may differ by a few ulp of t, and σ' = 1 − t² turns that into an absolute (not a
        // relative) error of a few ulp of 1 where σ' is small: measure a' against |z'| and a''
        // against z'² + |z''|, the sizes its terms would have at σ', σ'' = O(1).
        let scale = [1.0, z1.abs(), z1 * z1 + z2.abs(), 1.0, 1.0];
        for k in 0..5 {
            let d = (e[k] - h[k]).abs() / scale[k].max(f64::MIN_POSITIVE);
            worst_fwd = worst_fwd.max(d);
        }
        let ab = [
            wide(&mut rng, -2.0, 2.0),
            wide(&mut rng, -2.0, 2.0),
            wide(&mut rng, -2.0, 2.0),
        ];
        let fwd = [e[0], e[3], e[4]];
        let eb = tanh_jet_bwd(ab, fwd, z1, z2);
        let hb = f64::jet_tanh_bwd(ab, fwd, z1, z2);
        for k in 0..3 {
            if fma {
                assert_eq!(
                    eb[k].to_bits(),
                    hb[k].to_bits(),
                    "z̄ stream {k}: {} vs {}",
                    eb[k],
                    hb[k]
                );
            }
            let d = (eb[k] - hb[k]).abs() / eb[k].abs().max(1e-300);
            worst_bwd = worst_bwd.max(d);
        }
        // f32 too, to f32 rounding.
        let (e32, h32) = (
            tanh_jet_fwd(z0 as f32, z1 as f32, z2 as f32),
            f32::jet_tanh_fwd(z0 as f32, z1 as f32, z2 as f32),
        );
        assert!(
            (e32[0] - h32[0]).abs() <= 4.0 * f32::EPSILON,
            "f32 tanh {} vs {}",
            e32[0],
            h32[0]
        );
    }
    assert!(
        worst_fwd <= 1e-13,
        "forward jets differ by {worst_fwd:e} relative"
    );
    assert!(
        worst_bwd <= 1e-13,
        "backward adjoints differ by {worst_bwd:e} relative"
    );
}
