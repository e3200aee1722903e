//! The model's loss goes through the fused residual op (mspinn-kernels); it must equal the
//! unfused candle expression, value and θ-gradient, in f64 on the CPU.

use candle_core::Tensor;
use mspinn_model::fixture::Fixture;
use mspinn_model::{Activation, DType, Device, Init, Mlp, MlpConfig, ResidualSet};

fn set(preset: &str, n: usize, lambda: f64) -> ResidualSet {
    Fixture::new(preset)
        .eps(1.0 / 16.0)
        .midpoints(n)
        .lambda(lambda)
        .set()
        .unwrap()
}

fn grads(mlp: &Mlp, total: &Tensor) -> Vec<f64> {
    let store = total.backward().unwrap();
    let mut out = Vec::new();
    for v in mlp.vars() {
        let g = match store.get(v.as_tensor()) {
            Some(g) => g.clone(),
            None => v.as_tensor().zeros_like().unwrap(),
        };
        out.extend(g.flatten_all().unwrap().to_vec1::<f64>().unwrap());
    }
    out
}

#[test]
fn fused_loss_and_gradient_equal_the_unfused_expression() {
    // 1000 collocation rows (not a multiple of the 256-row tile) plus 2 boundary rows.
    for (preset, lambda) in [
        ("twoscale-darcy", 100.0),
        ("twoscale-poisson", 10.0),
        ("twoscale-regression", 0.0),
    ] {
        let s = set(preset, 1000, lambda);
        let cfg = MlpConfig::new(vec![20, 20], Activation::Tanh, Init::GlorotNormal, 5);
        let mlp = Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap();
        let (tf, lf) = mlp.loss_tensor(&s).unwrap();
        let (tu, lu) = mlp.loss_tensor_unfused(&s).unwrap();
        for (a, b, what) in [
            (lf.total, lu.total, "total"),
            (lf.pde, lu.pde, "pde"),
            (lf.bc, lu.bc, "bc"),
        ] {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs(),
                "{preset}: loss {what} fused {a} vs unfused {b}"
            );
        }
        let (gf, gu) = (grads(&mlp, &tf), grads(&mlp, &tu));
        let scale = gu.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(scale > 0.0);
        for (j, (a, b)) in gf.iter().zip(&gu).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12 * scale,
                "{preset}: ∂L/∂θ[{j}] {a} vs {b}"
            );
        }
        // weighted_half_squares (fused) against the unfused residual, row by row.
        let (e, r) = mlp.weighted_half_squares(&s).unwrap();
        let r_ref = s.residual(&mlp.jets(&s.x).unwrap()).unwrap();
        let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let (r, r_ref, e) = (v(&r), v(&r_ref), v(&e));
        for i in 0..s.len() {
            assert!(
                (r[i] - r_ref[i]).abs() <= 1e-12 * r_ref[i].abs().max(1e-300),
                "{preset}: r[{i}]"
            );
            let e_ref = 0.5 * s.host_w[i] * r_ref[i] * r_ref[i];
            assert!(
                (e[i] - e_ref).abs() <= 1e-12 * e_ref.max(1e-300),
                "{preset}: e[{i}]"
            );
        }
    }
}
