//! The fused residual op on the CPU in f64 against the unfused candle expression (forward) and
//! candle autograd through it (backward), on sizes that are not multiples of the block size, with
//! and without boundary rows.

use candle_core::{DType, Device, Tensor, Var};
use mspinn_kernels::{fused_residual, pack_constants, stack_jets, KernelError, Outputs, BLOCK};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SIZES: [usize; 5] = [1, 255, 1000, 4097, 513];

struct Case {
    n: usize,
    n_pde: usize,
    jets: [Vec<f64>; 3],
    consts: [Vec<f64>; 5],
}

fn case(n: usize, n_bc: usize, seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v =
        |lo: f64, hi: f64| -> Vec<f64> { (0..n).map(|_| rng.random_range(lo..hi)).collect() };
    // Scales like a Darcy PINN: u'' large, c1 ~ 1/ε.
    let jets = [v(-1.0, 1.0), v(-10.0, 10.0), v(-300.0, 300.0)];
    let mut consts = [
        v(0.0, 1.0),
        v(-40.0, 40.0),
        v(-10.0, -0.1),
        v(-5.0, 5.0),
        v(0.0, 1.0),
    ];
    let n_pde = n - n_bc;
    // Boundary rows are c0 = 1, c1 = c2 = 0 with weight λ/N_b.
    for (k, value) in [(0, 1.0), (1, 0.0), (2, 0.0), (4, 50.0)] {
        consts[k][n_pde..].fill(value);
    }
    Case {
        n,
        n_pde,
        jets,
        consts,
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (k, &n) in SIZES.iter().enumerate() {
        out.push(case(n, 0, 10 + k as u64));
        if n > 2 {
            out.push(case(n, 2, 20 + k as u64));
        }
    }
    // More boundary rows than one tile, so the boundary segment has several tiles too.
    out.push(case(700, 300, 99));
    out
}

fn col(v: &[f64]) -> Tensor {
    Tensor::from_slice(v, (v.len(), 1), &Device::Cpu).unwrap()
}
fn host(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}
fn packed(c: &Case, dtype: DType) -> Tensor {
    let k = &c.consts;
    pack_constants([&k[0], &k[1], &k[2], &k[3], &k[4]], dtype, &Device::Cpu).unwrap()
}

/// The unfused candle expression the model used before: r and w½r² as (N, 1) columns.
fn unfused(c: &Case, u: &Tensor, du: &Tensor, d2u: &Tensor) -> (Tensor, Tensor) {
    let k: Vec<Tensor> = c.consts.iter().map(|v| col(v)).collect();
    let r = ((&k[2] * d2u).unwrap() + (&k[1] * du).unwrap()).unwrap();
    let r = ((r + (&k[0] * u).unwrap()).unwrap() - &k[3]).unwrap();
    let e = (r.sqr().unwrap() * &k[4])
        .unwrap()
        .affine(0.5, 0.0)
        .unwrap();
    (r, e)
}

fn assert_close(what: &str, a: &[f64], b: &[f64], rel: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rel * scale,
            "{what}[{i}]: {x} vs {y} (scale {scale})"
        );
    }
}

#[test]
fn forward_equals_unfused_expression() {
    for c in cases() {
        let [u, du, d2u] = c.jets.each_ref().map(|v| col(v));
        let (r_ref, e_ref) = unfused(&c, &u, &du, &d2u);
        let jets = stack_jets(&u, &du, &d2u).unwrap();
        let f = fused_residual(&jets, &packed(&c, DType::F64), c.n_pde, Outputs::ALL).unwrap();
        let tag = format!("N = {}, n_pde = {}", c.n, c.n_pde);
        assert_eq!(f.residual.as_ref().unwrap().dims(), [c.n, 1]);
        assert_close(
            &format!("r, {tag}"),
            &host(f.residual.as_ref().unwrap()),
            &host(&r_ref),
            1e-12,
        );
        assert_close(
            &format!("e, {tag}"),
            &host(f.half_squares.as_ref().unwrap()),
            &host(&e_ref),
            1e-12,
        );

        // Each partial is the sum of its own tile's e, tiles not straddling PDE/boundary rows.
        let e = host(&e_ref);
        let p = host(&f.partials);
        assert_eq!(
            p.len(),
            c.n_pde.div_ceil(BLOCK) + (c.n - c.n_pde).div_ceil(BLOCK)
        );
        let mut expect = Vec::new();
        for seg in [0..c.n_pde, c.n_pde..c.n] {
            for chunk in e[seg].chunks(BLOCK) {
                expect.push(chunk.iter().sum::<f64>());
            }
        }
        assert_close(&format!("partials, {tag}"), &p, &expect, 1e-12);

        let pde_ref: f64 = e[..c.n_pde].iter().sum();
        let pde = f.pde_loss().unwrap().to_scalar::<f64>().unwrap();
        assert!(
            (pde - pde_ref).abs() <= 1e-12 * pde_ref.abs(),
            "{tag}: {pde} vs {pde_ref}"
        );
        match f.bc_loss().unwrap() {
            None => assert_eq!(c.n_pde, c.n),
            Some(bc) => {
                let bc_ref: f64 = e[c.n_pde..].iter().sum();
                let bc = bc.to_scalar::<f64>().unwrap();
                assert!(
                    (bc - bc_ref).abs() <= 1e-12 * bc_ref.abs(),
                    "{tag}: {bc} vs {bc_ref}"
                );
            }
        }
    }
}

/// A loss that touches every output of the op with different weights, so every term of the
/// backward (through r, through w½r², through each segment's partials) is checked.
fn probe_loss(c: &Case, r: &Tensor, e: &Tensor, pde: &Tensor, bc: Option<&Tensor>) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(c.n as u64);
    let mut v = || -> Tensor {
        col(&(0..c.n)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect::<Vec<_>>())
    };
    let (a, b) = (v(), v());
    let mut l =
        ((r * &a).unwrap().sum_all().unwrap() + (e * &b).unwrap().sum_all().unwrap()).unwrap();
    l = (l + pde.affine(2.0, 0.0).unwrap()).unwrap();
    if let Some(bc) = bc {
        l = (l + bc.affine(3.0, 0.0).unwrap()).unwrap();
    }
    l
}

#[test]
fn backward_equals_autograd_through_unfused_expression() {
    for c in cases() {
        let tag = format!("N = {}, n_pde = {}", c.n, c.n_pde);
        let vars = c
            .jets
            .each_ref()
            .map(|v| Var::from_tensor(&col(v)).unwrap());
        let [u, du, d2u] = vars.each_ref().map(|v| v.as_tensor().clone());
        let grads_of = |l: &Tensor| -> Vec<Vec<f64>> {
            let g = l.backward().unwrap();
            vars.iter()
                .map(|v| host(g.get(v.as_tensor()).unwrap()))
                .collect()
        };

        // The training loss alone (only partials), and the probe through every output.
        let (r_ref, e_ref) = unfused(&c, &u, &du, &d2u);
        let pde_ref = e_ref.narrow(0, 0, c.n_pde).unwrap().sum_all().unwrap();
        let bc_ref = (c.n > c.n_pde).then(|| {
            e_ref
                .narrow(0, c.n_pde, c.n - c.n_pde)
                .unwrap()
                .sum_all()
                .unwrap()
        });
        let loss_ref = match &bc_ref {
            Some(b) => (&pde_ref + b).unwrap(),
            None => pde_ref.clone(),
        };
        let g_loss_ref = grads_of(&loss_ref);
        let g_probe_ref = grads_of(&probe_loss(&c, &r_ref, &e_ref, &pde_ref, bc_ref.as_ref()));

        let k = packed(&c, DType::F64);
        let jets = stack_jets(&u, &du, &d2u).unwrap();
        let f = fused_residual(&jets, &k, c.n_pde, Outputs::LOSS).unwrap();
        assert!(f.residual.is_none() && f.half_squares.is_none());
        let loss = match f.bc_loss().unwrap() {
            Some(b) => (f.pde_loss().unwrap() + b).unwrap(),
            None => f.pde_loss().unwrap(),
        };
        let g_loss = grads_of(&loss);
        let f = fused_residual(&jets, &k, c.n_pde, Outputs::ALL).unwrap();
        let bc = f.bc_loss().unwrap();
        let probe = probe_loss(
            &c,
            f.residual.as_ref().unwrap(),
            f.half_squares.as_ref().unwrap(),
            &f.pde_loss().unwrap(),
            bc.as_ref(),
        );
        let g_probe = grads_of(&probe);
        for (s, name) in ["u", "u'", "u''"].iter().enumerate() {
            assert_close(
                &format!("dL/d{name}, loss, {tag}"),
                &g_loss[s],
                &g_loss_ref[s],
                1e-12,
            );
            assert_close(
                &format!("dL/d{name}, probe, {tag}"),
                &g_probe[s],
                &g_probe_ref[s],
                1e-12,
            );
        }
        // The training gradient is exactly w r c_k (incoming gradient 1).
        let n = c.n;
        for i in 0..n {
            let k = &c.consts;
            let r =
                k[2][i] * c.jets[2][i] + k[1][i] * c.jets[1][i] + k[0][i] * c.jets[0][i] - k[3][i];
            let s = k[4][i] * r;
            assert_eq!(g_loss[0][i], k[0][i] * s, "{tag}: dL/du[{i}]");
            assert_eq!(g_loss[2][i], k[2][i] * s, "{tag}: dL/du''[{i}]");
        }
    }
}

#[test]
fn f32_forward_matches_f64() {
    for c in cases() {
        let tag = format!("N = {}, n_pde = {}", c.n, c.n_pde);
        let run = |dtype: DType| {
            let [u, du, d2u] = c.jets.each_ref().map(|v| col(v).to_dtype(dtype).unwrap());
            let jets = stack_jets(&u, &du, &d2u).unwrap();
            let f = fused_residual(&jets, &packed(&c, dtype), c.n_pde, Outputs::ALL).unwrap();
            let mut loss = vec![f.pde_loss().unwrap()];
            loss.extend(f.bc_loss().unwrap());
            (
                host(f.residual.as_ref().unwrap()),
                host(&f.partials),
                loss.iter().map(|l| host(l)[0]).collect::<Vec<_>>(),
            )
        };
        let (r32, p32, l32) = run(DType::F32);
        let (r64, p64, l64) = run(DType::F64);
        assert_close(&format!("r f32, {tag}"), &r32, &r64, 1e-5);
        assert_close(&format!("partials f32, {tag}"), &p32, &p64, 1e-5);
        for (a, b) in l32.iter().zip(&l64) {
            assert!((a - b).abs() <= 1e-5 * b.abs(), "{tag}: loss {a} vs {b}");
        }
    }
}

/// The documented reduction order (kernels/src/residual.cu): a tile's 256 slots, zero-padded, are
/// summed by slot t += slot t + s for s = 128, 64, …, 1. Written here independently of the crate.
fn documented_tree(vals: &[f64]) -> f64 {
    let mut buf = [0.0f64; 256];
    buf[..vals.len()].copy_from_slice(vals);
    let mut s = 128;
    while s > 0 {
        for t in 0..s {
            buf[t] += buf[t + s];
        }
        s /= 2;
    }
    buf[0]
}

#[test]
fn cpu_reduction_is_deterministic_and_in_the_documented_order() {
    assert_eq!(BLOCK, 256, "the CUDA kernel's MSPINN_RESIDUAL_BLOCK");
    let c = case(4097, 2, 7);
    let [u, du, d2u] = c.jets.each_ref().map(|v| col(v));
    let jets = stack_jets(&u, &du, &d2u).unwrap();
    let k = packed(&c, DType::F64);
    let run = || {
        let f = fused_residual(&jets, &k, c.n_pde, Outputs::ALL).unwrap();
        (host(&f.partials), host(f.half_squares.as_ref().unwrap()))
    };
    let (p1, e) = run();
    let (p2, _) = run();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&p1), bits(&p2), "two runs differ");
    let mut expect = Vec::new();
    for seg in [0..c.n_pde, c.n_pde..c.n] {
        for chunk in e[seg].chunks(BLOCK) {
            expect.push(documented_tree(chunk));
        }
    }
    assert_eq!(
        bits(&p1),
        bits(&expect),
        "partials not in the documented tree order"
    );
}

#[test]
fn bad_inputs_are_errors_naming_the_shapes() {
    let c = case(10, 2, 1);
    let [u, du, d2u] = c.jets.each_ref().map(|v| col(v));
    let jets = stack_jets(&u, &du, &d2u).unwrap();
    let k = packed(&c, DType::F64);
    let short = col(&c.jets[0][..9]);
    match stack_jets(&u, &short, &d2u) {
        Err(KernelError::Shape { got, .. }) => assert!(got.contains("u'"), "{got}"),
        other => panic!("expected a shape error, got {other:?}"),
    }
    let err = fused_residual(&jets, &k.narrow(0, 0, 4).unwrap(), 8, Outputs::LOSS).unwrap_err();
    assert!(err.to_string().contains("constants [4, 10]"), "{err}");
    let err = fused_residual(&jets, &k, 11, Outputs::LOSS).unwrap_err();
    assert!(err.to_string().contains("n_pde = 11"), "{err}");
    let err =
        fused_residual(&jets.to_dtype(DType::F32).unwrap(), &k, 8, Outputs::LOSS).unwrap_err();
    assert!(err.to_string().contains("F32"), "{err}");
    let err = pack_constants(
        [&[1.0], &[1.0], &[1.0, 2.0], &[1.0], &[1.0]],
        DType::F64,
        &Device::Cpu,
    )
    .unwrap_err();
    assert!(err.to_string().contains("c2 has 2"), "{err}");
}

#[test]
fn self_test_refuses_the_cpu() {
    let err = mspinn_kernels::self_test(&Device::Cpu).unwrap_err();
    assert!(matches!(err, KernelError::NoCuda(_)), "{err}");
}
