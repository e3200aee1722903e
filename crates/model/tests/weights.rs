//! Seeded initialisation and the safetensors format.

use mspinn_model::{Activation, DType, Device, Init, Mlp, MlpConfig};

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    for init in [Init::GlorotNormal, Init::GlorotUniform, Init::Normal] {
        let cfg = |seed| MlpConfig::new(vec![40, 40], Activation::Tanh, init, seed);
        let a = Mlp::new(cfg(7), DType::F64, &Device::Cpu).unwrap();
        let b = Mlp::new(cfg(7), DType::F64, &Device::Cpu).unwrap();
        let c = Mlp::new(cfg(8), DType::F64, &Device::Cpu).unwrap();
        let (pa, pb, pc) = (
            a.flat_params().unwrap(),
            b.flat_params().unwrap(),
            c.flat_params().unwrap(),
        );
        // (W_0 40×1, b_0) + (W_1 40×40, b_1) + (W_2 1×40, b_2)
        assert_eq!(pa.len(), 40 + 40 + 40 * 40 + 40 + 40 + 1);
        assert!(pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_ne!(pa, pc);
        // f32 is the f64 draw rounded: a seed names one network in every dtype.
        let a32 = Mlp::new(cfg(7), DType::F32, &Device::Cpu).unwrap();
        for (x, y) in pa.iter().zip(a32.flat_params().unwrap()) {
            assert_eq!((*x as f32) as f64, y);
        }
    }
}

#[test]
fn init_statistics_match_their_definitions() {
    // Variance of Glorot layers is 2/(fan_in + fan_out); N(0,1) has unit variance.
    let big = |init| {
        let cfg = MlpConfig::new(vec![300, 300], Activation::Tanh, init, 1);
        let m = Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap();
        let w: Vec<f64> = m
            .weight(1)
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / w.len() as f64;
        let maxabs = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        (var, maxabs)
    };
    let target = 2.0 / 600.0;
    let (v, _) = big(Init::GlorotNormal);
    assert!((v / target - 1.0).abs() < 0.03, "glorot normal var {v}");
    let (v, maxabs) = big(Init::GlorotUniform);
    assert!((v / target - 1.0).abs() < 0.03, "glorot uniform var {v}");
    assert!(maxabs <= (6.0f64 / 600.0).sqrt());
    let (v, _) = big(Init::Normal);
    assert!((v - 1.0).abs() < 0.03, "normal var {v}");
}

#[test]
fn safetensors_round_trip_is_exact() {
    let dir = std::env::temp_dir().join(format!("mspinn-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for dtype in [DType::F64, DType::F32] {
        let cfg = MlpConfig::new(vec![13, 9], Activation::Tanh, Init::GlorotNormal, 42);
        let a = Mlp::new(cfg, dtype, &Device::Cpu).unwrap();
        let path = dir.join(format!("w-{dtype:?}.safetensors"));
        a.save(&path).unwrap();
        let b = Mlp::load(&path, Activation::Tanh, dtype, &Device::Cpu).unwrap();
        assert_eq!(b.config().hidden, vec![13, 9]);
        let (pa, pb) = (a.flat_params().unwrap(), b.flat_params().unwrap());
        assert!(pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()));
        // The file names and shapes are the documented ones.
        let raw = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(raw["layers.0.weight"].dims(), &[13, 1]);
        assert_eq!(raw["layers.1.weight"].dims(), &[9, 13]);
        assert_eq!(raw["layers.2.bias"].dims(), &[1]);
        assert_eq!(raw["layers.0.weight"].dtype(), dtype);
    }
    // A file that does not chain is refused with a message, not a panic.
    let bad = dir.join("bad.safetensors");
    let mut map = std::collections::HashMap::new();
    map.insert(
        "layers.0.weight".to_string(),
        candle_core::Tensor::zeros((4, 2), DType::F64, &Device::Cpu).unwrap(),
    );
    map.insert(
        "layers.0.bias".to_string(),
        candle_core::Tensor::zeros(4, DType::F64, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&map, &bad).unwrap();
    assert!(Mlp::load(&bad, Activation::Tanh, DType::F64, &Device::Cpu).is_err());
    assert!(Mlp::load(
        &dir.join("missing.safetensors"),
        Activation::Tanh,
        DType::F64,
        &Device::Cpu
    )
    .is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_configs_are_errors() {
    let dev = Device::Cpu;
    assert!(Mlp::new(
        MlpConfig::new(vec![], Activation::Tanh, Init::Normal, 0),
        DType::F64,
        &dev
    )
    .is_err());
    assert!(Mlp::new(
        MlpConfig::new(vec![3, 0], Activation::Tanh, Init::Normal, 0),
        DType::F64,
        &dev
    )
    .is_err());
    assert!(Mlp::new(
        MlpConfig::new(vec![3], Activation::Tanh, Init::Normal, 0),
        DType::U8,
        &dev
    )
    .is_err());
}

/// `Mlp::to` makes fresh variables even to the same dtype and device: changing the copy (as
/// training does, in place) leaves the original as it was.
#[test]
fn a_converted_network_shares_no_parameters() {
    let cfg = MlpConfig::new(vec![6], Activation::Tanh, Init::GlorotNormal, 3);
    let a = Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap();
    let before = a.flat_params().unwrap();
    for dtype in [DType::F64, DType::F32] {
        let b = a.to(dtype, &Device::Cpu).unwrap();
        b.set_flat_params(&vec![0.5; b.num_params()]).unwrap();
        assert_eq!(a.flat_params().unwrap(), before, "{dtype:?}");
    }
}
