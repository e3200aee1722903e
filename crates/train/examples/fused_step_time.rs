//! Times one Adam step (loss, gradient by autograd, update) of the 4×40 Darcy PINN of Fig. 4
//! (ε = 1/32, N_c = 1024 equispaced, λ = 100, f64, CPU) with the loss through the fused residual
//! op (`Mlp::loss_tensor`, what training uses) and through the unfused candle expression
//! (`Mlp::loss_tensor_unfused`, what main used). The two are interleaved in rounds so machine
//! load affects both alike; the medians per round are printed. Not a test: timings are reported,
//! never asserted.
//!
//! cargo run --release -p mspinn-train --example fused_step_time [-- ROUNDS STEPS N_C]

use std::time::Instant;

use mspinn_model::{Activation, DType, Device, Init, Mlp, MlpConfig, ResidualSet, Tensor};
use mspinn_problem::{collocation, PointSpec, Problem};
use mspinn_train::adam::Adam;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let rounds = args.first().copied().unwrap_or(7);
    let steps = args.get(1).copied().unwrap_or(100);
    let n_c = args.get(2).copied().unwrap_or(1024);

    let p = Problem::preset("twoscale-darcy", Some(1.0 / 32.0))?;
    let x = collocation(p.domain, PointSpec::Endpoints(n_c))?;
    let set = ResidualSet::new(
        &p.pde_rows(&x)?,
        &p.boundary_rows(),
        100.0,
        DType::F64,
        &Device::Cpu,
    )?;
    let cfg = MlpConfig::new(vec![40; 4], Activation::Tanh, Init::GlorotNormal, 1);

    type LossFn = fn(&Mlp, &ResidualSet) -> mspinn_model::Result<(Tensor, mspinn_model::LossTerms)>;
    let paths: [(&str, LossFn); 2] = [
        ("fused", Mlp::loss_tensor),
        ("unfused", Mlp::loss_tensor_unfused),
    ];
    let mut per_step = [Vec::new(), Vec::new()];
    let mut last = [0.0; 2];
    for round in 0..rounds {
        for (k, (_, loss)) in paths.iter().enumerate() {
            // Same seed, same start, each round: both paths do identical work.
            let mlp = Mlp::new(cfg.clone(), DType::F64, &Device::Cpu)?;
            let mut adam = Adam::new(mlp.vars())?;
            let t0 = Instant::now();
            for _ in 0..steps {
                let (total, terms) = loss(&mlp, &set)?;
                let mut store = total.backward()?;
                let grads = mlp
                    .vars()
                    .iter()
                    .map(|v| {
                        store
                            .remove(v.as_tensor())
                            .map_or_else(|| v.as_tensor().zeros_like(), Ok)
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?;
                adam.step(&grads, 1e-3)?;
                last[k] = terms.total;
            }
            let us = t0.elapsed().as_secs_f64() * 1e6 / steps as f64;
            if round > 0 {
                // Round 0 warms caches and the allocator.
                per_step[k].push(us);
            }
        }
    }
    println!(
        "4x40 Darcy PINN, N_c = {n_c} (+2 boundary rows), f64 CPU, {steps} Adam steps x {} rounds",
        rounds - 1
    );
    for (k, (name, _)) in paths.iter().enumerate() {
        let v = &mut per_step[k];
        v.sort_by(f64::total_cmp);
        println!(
            "{name:>8}: median {:8.1} us/step  (min {:8.1}, max {:8.1})  final loss {:.12e}",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1],
            last[k]
        );
    }
    Ok(())
}
