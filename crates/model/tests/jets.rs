//! The Taylor-mode jets against two independent computations: closed-form derivatives of a
//! one-hidden-layer net, and central finite differences of the network value (deeper nets).

use mspinn_model::mlp::points_tensor;
use mspinn_model::{Activation, DType, Device, Init, Mlp, MlpConfig};

fn col(t: &candle_core::Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn one_hidden_layer_matches_closed_form() {
    for act in [Activation::Tanh, Activation::Sin, Activation::Softplus] {
        let cfg = MlpConfig::new(vec![7], act, Init::Normal, 11);
        let mlp = Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap();
        let w0 = col(mlp.weight(0).as_tensor());
        let b0 = col(mlp.bias(0).as_tensor());
        let v = col(mlp.weight(1).as_tensor());
        let c = col(mlp.bias(1).as_tensor())[0];
        let xs: Vec<f64> = (0..41).map(|i| -3.0 + 0.15 * i as f64).collect();
        let jets = mlp
            .jets(&points_tensor(&xs, DType::F64, &Device::Cpu).unwrap())
            .unwrap();
        let (u, du, d2u) = (col(&jets.u), col(&jets.du), col(&jets.d2u));
        for (i, &x) in xs.iter().enumerate() {
            // u = Σ v_k σ(w_k x + b_k) + c, u' = Σ v_k w_k σ', u'' = Σ v_k w_k² σ''.
            let (mut eu, mut edu, mut ed2u) = (c, 0.0, 0.0);
            for k in 0..7 {
                let z = w0[k] * x + b0[k];
                eu += v[k] * act.scalar(z, 0);
                edu += v[k] * w0[k] * act.scalar(z, 1);
                ed2u += v[k] * w0[k] * w0[k] * act.scalar(z, 2);
            }
            let scale = 1.0 + eu.abs() + edu.abs() + ed2u.abs();
            assert!((u[i] - eu).abs() <= 1e-12 * scale, "{act:?} u at {x}");
            assert!((du[i] - edu).abs() <= 1e-12 * scale, "{act:?} u' at {x}");
            assert!((d2u[i] - ed2u).abs() <= 1e-12 * scale, "{act:?} u'' at {x}");
        }
    }
}

#[test]
fn deep_net_jets_match_central_differences() {
    for act in [Activation::Tanh, Activation::Sin, Activation::Softplus] {
        let cfg = MlpConfig::new(vec![20, 30, 20], act, Init::GlorotNormal, 5);
        let mlp = Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap();
        let xs: Vec<f64> = (0..25).map(|i| -3.0 + 0.25 * i as f64).collect();
        let dev = Device::Cpu;
        let jets = mlp
            .jets(&points_tensor(&xs, DType::F64, &dev).unwrap())
            .unwrap();
        let (du, d2u) = (col(&jets.du), col(&jets.d2u));
        // u' against central differences of u (h = 1e-5: truncation ~h²u'''/6, round-off
        // ~u·1e-16/h, both ≪ 1e-6); u'' against central differences of the jet's u', which the
        // first check has just tied to u (a second difference of u would lose 8 digits to
        // round-off).
        let h = 1e-5;
        let shift = |d: f64| -> (Vec<f64>, Vec<f64>) {
            let p: Vec<f64> = xs.iter().map(|x| x + d).collect();
            let j = mlp
                .jets(&points_tensor(&p, DType::F64, &dev).unwrap())
                .unwrap();
            (col(&j.u), col(&j.du))
        };
        let ((up, dup), (um, dum)) = (shift(h), shift(-h));
        let u0 = mlp.eval_points(&xs).unwrap();
        assert!(u0
            .iter()
            .zip(col(&jets.u))
            .all(|(a, b)| (a - b).abs() <= 1e-14 * (1.0 + a.abs())));
        let dscale = du.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let d2scale = d2u.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for i in 0..xs.len() {
            let fd1 = (up[i] - um[i]) / (2.0 * h);
            let fd2 = (dup[i] - dum[i]) / (2.0 * h);
            assert!(
                (fd1 - du[i]).abs() <= 1e-6 * dscale,
                "{act:?} u' at {}: jet {} fd {}",
                xs[i],
                du[i],
                fd1
            );
            assert!(
                (fd2 - d2u[i]).abs() <= 1e-6 * d2scale,
                "{act:?} u'' at {}: jet {} fd {}",
                xs[i],
                d2u[i],
                fd2
            );
        }
    }
}

#[test]
fn f32_jets_track_f64() {
    let cfg = MlpConfig::new(
        vec![40, 40, 40, 40],
        Activation::Tanh,
        Init::GlorotNormal,
        3,
    );
    let m64 = Mlp::new(cfg.clone(), DType::F64, &Device::Cpu).unwrap();
    let m32 = Mlp::new(cfg, DType::F32, &Device::Cpu).unwrap();
    let xs: Vec<f64> = (0..64).map(|i| -3.1 + 0.1 * i as f64).collect();
    let j64 = m64
        .jets(&points_tensor(&xs, DType::F64, &Device::Cpu).unwrap())
        .unwrap();
    let j32 = m32
        .jets(&points_tensor(&xs, DType::F32, &Device::Cpu).unwrap())
        .unwrap();
    for (a, b) in [(&j64.d2u, &j32.d2u), (&j64.du, &j32.du)] {
        let a = col(a);
        let b: Vec<f64> = col(&b.to_dtype(DType::F64).unwrap());
        let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-4 * scale);
        }
    }
}
