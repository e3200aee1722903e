//! The 2-D homogenised tensor from the cell problems, against closed forms and bounds, and the
//! homogenised solution ū.

use std::f64::consts::PI;

use mspinn_problem::two_d::{FvGrid, NumberExpr, Tensor2};
use mspinn_problem::{Coefficient, Coefficient2d, Problem2d, Problem2dConfig, ProblemError};

/// A coefficient with no symmetry at all (ā₁₂ ≈ −0.069 ≠ 0).
const GENERAL: &str = "3 + sin(2*pi*y1) + cos(2*pi*(y1 + 2*y2)) + 0.5*sin(2*pi*y2)^2";

fn coef(expr: &str) -> Coefficient2d {
    Coefficient2d::parse(expr, [1.0, 1.0]).unwrap()
}

fn tensor(c: &Coefficient2d, n: usize) -> Tensor2 {
    c.homogenized_tensor_on([n, n]).unwrap()
}

#[test]
fn laminates_give_the_harmonic_mean_across_and_the_arithmetic_mean_along() {
    // a(y1) = 1/(2.1 + 2 sin 2πy1): across the layers the 1-D harmonic mean (from the 1-D
    // crate's own quadrature), along them the arithmetic mean 1/√(2.1² − 4).
    let lam = Coefficient2d::from_name("laminate-4.1").unwrap();
    let a = lam.homogenized_tensor_on([128, 4]).unwrap();
    let h = Coefficient::parse("1/(2.1 + 2*sin(2*pi*y))", 1.0)
        .unwrap()
        .harmonic_mean();
    assert!((a[0][0] - h).abs() < 1e-12, "{a:?} vs {h}");
    assert!((a[1][1] - 1.0 / 0.41f64.sqrt()).abs() < 1e-12, "{a:?}");
    assert!(a[0][1].abs() < 1e-14 && a[1][0].abs() < 1e-14, "{a:?}");
    // The same with the layers the other way round: 2 + sin(2πy2), harmonic mean √3.
    let a = coef("2 + sin(2*pi*y2)")
        .homogenized_tensor_on([4, 64])
        .unwrap();
    assert!((a[1][1] - 3f64.sqrt()).abs() < 1e-12, "{a:?}");
    assert!((a[0][0] - 2.0).abs() < 1e-12, "{a:?}");
}

#[test]
fn a_diagonal_laminate_has_its_closed_form_off_diagonal_entry() {
    // a = 2 + sin(2π(y1 + y2)) is a laminate with normal n = (1, 1)/√2:
    // ā = H n nᵀ + A (I − n nᵀ), H = √3, A = 2, so ā11 = (H + A)/2, ā12 = (H − A)/2. The
    // layers are not aligned with the grid: the error falls at second order.
    let c = coef("2 + sin(2*pi*(y1 + y2))");
    let (d, o) = ((3f64.sqrt() + 2.0) / 2.0, (3f64.sqrt() - 2.0) / 2.0);
    let errors: Vec<f64> = [32, 64, 128]
        .iter()
        .map(|&n| {
            let a = tensor(&c, n);
            (a[0][0] - d)
                .abs()
                .max((a[1][1] - d).abs())
                .max((a[0][1] - o).abs())
        })
        .collect();
    for w in errors.windows(2) {
        let order = (w[0] / w[1]).log2();
        assert!((1.8..=2.2).contains(&order), "{errors:?}");
    }
    assert!(errors[2] < 1e-4, "{errors:?}");
}

#[test]
fn the_tensor_is_symmetric_and_swap_symmetry_equalises_the_diagonal() {
    let a = tensor(&coef(GENERAL), 64);
    assert!(a[0][1].abs() > 0.05, "{a:?}");
    assert!((a[0][1] - a[1][0]).abs() < 1e-12, "{a:?}");
    // a(y1, y2) = a(y2, y1): ā11 = ā22 (the square grid respects the swap).
    let a = tensor(
        &coef("3.5 + sin(2*pi*y1) + sin(2*pi*y2) + cos(2*pi*(y1 - y2))"),
        64,
    );
    assert!((a[0][0] - a[1][1]).abs() < 1e-12, "{a:?}");
    assert!((a[0][1] - a[1][0]).abs() < 1e-12, "{a:?}");
}

/// Means of a over the period cell by the tensor midpoint rule on m × m points (spectrally
/// accurate for these smooth periodic coefficients, and independent of the cell solver):
/// (harmonic, arithmetic, H_y1(A_y2 a), A_y2(H_y1 a)).
fn means(c: &Coefficient2d, m: usize) -> [f64; 4] {
    let at = |i: usize, j: usize| c.a([(i as f64 + 0.5) / m as f64, (j as f64 + 0.5) / m as f64]);
    let mut inv = 0.0;
    let mut sum = 0.0;
    let mut inv_of_col_mean = 0.0; // Σ_i 1/(mean over j)
    let mut col_harm = 0.0; // Σ_j harmonic mean over i
    for i in 0..m {
        let mut col = 0.0;
        for j in 0..m {
            let v = at(i, j);
            inv += 1.0 / v;
            sum += v;
            col += v;
        }
        inv_of_col_mean += m as f64 / col;
    }
    for j in 0..m {
        let s: f64 = (0..m).map(|i| 1.0 / at(i, j)).sum();
        col_harm += m as f64 / s;
    }
    let mm = (m * m) as f64;
    [
        mm / inv,
        sum / mm,
        m as f64 / inv_of_col_mean,
        col_harm / m as f64,
    ]
}

#[test]
fn voigt_reuss_and_wiener_bounds_hold() {
    for expr in [GENERAL, "2 + sin(2*pi*y1)*cos(2*pi*y2)"] {
        let c = coef(expr);
        let a = tensor(&c, 128);
        let [harm, arith, h_of_a, a_of_h] = means(&c, 400);
        // Voigt–Reuss: harmonic ≤ eigenvalues of ā ≤ arithmetic.
        let tr = a[0][0] + a[1][1];
        let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
        let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
        let (lmin, lmax) = (tr / 2.0 - disc, tr / 2.0 + disc);
        assert!(
            harm < lmin && lmax < arith,
            "{expr}: {harm} {lmin} {lmax} {arith}"
        );
        // The nested (Wiener) bounds, from the two energy principles with trial fields that
        // depend on one variable only: a potential χ(y1) bounds ā11 from above by the
        // harmonic mean in y1 of the y2-mean; a flux (σ(y2), 0) bounds 1/(ā⁻¹)11 =
        // ā11 − ā12²/ā22 from below by the y2-mean of the harmonic means in y1.
        assert!(a[0][0] <= h_of_a, "{expr}: {a:?} {h_of_a}");
        let schur = a[0][0] - a[0][1] * a[1][0] / a[1][1];
        assert!(a_of_h <= schur, "{expr}: {a_of_h} {schur}");
    }
    // oscillatory-2d: 1 ≤ a ≤ 3, the bounds are strict and ā = ā11 I (reflection symmetry).
    let a = Coefficient2d::oscillatory_2d()
        .unwrap()
        .homogenized_tensor()
        .unwrap();
    assert!(
        (a[0][0] - a[1][1]).abs() < 1e-10 && a[0][1].abs() < 1e-12,
        "{a:?}"
    );
    assert!((a[0][0] - 1.935359).abs() < 2e-5, "{a:?}");
}

#[test]
fn the_cell_tensor_converges_at_second_order() {
    // Measured on oscillatory-2d: ā11 = 1.934705, 1.935195, 1.935318, 1.935349 for
    // n = 32 … 256; successive differences shrink by 4 (orders 1.98, 1.995, 1.999).
    let c = Coefficient2d::oscillatory_2d().unwrap();
    let v: Vec<f64> = [32, 64, 128, 256]
        .iter()
        .map(|&n| tensor(&c, n)[0][0])
        .collect();
    for w in v.windows(3) {
        let order = ((w[1] - w[0]) / (w[2] - w[1])).log2();
        assert!((1.8..=2.2).contains(&order), "{v:?}: {order}");
    }
}

fn config(coefficient: &str, eps: f64, forcing: &str, boundary: &str) -> Problem2d {
    Problem2dConfig {
        eps: Some(NumberExpr::Number(eps)),
        coefficient: Some(coefficient.into()),
        forcing: Some(forcing.into()),
        boundary: Some(boundary.into()),
        ..Default::default()
    }
    .build(None)
    .unwrap()
}

#[test]
fn a_tensor_that_is_not_positive_definite_is_refused() {
    let p = config("oscillatory-2d", 0.25, "1", "0");
    let grid = FvGrid::new(p.domain, [8, 8]).unwrap();
    for bad in [
        [[1.0, 2.0], [2.0, 1.0]],
        [[-1.0, 0.0], [0.0, 1.0]],
        [[1.0, f64::NAN], [0.0, 1.0]],
    ] {
        match p.solve_homogenized(bad, grid).unwrap_err() {
            ProblemError::InvalidTensor { .. } => {}
            other => panic!("{bad:?}: {other}"),
        }
    }
}

/// Max error at cell centres of the homogenised solve with tensor `a` against
/// u = sin(πx) sin(πy) + x²y, whose forcing is written out by hand:
/// f = −(a11 u_xx + 2 a12 u_xy + a22 u_yy).
fn tensor_errors(a: [[f64; 2]; 2], ns: &[usize]) -> Vec<f64> {
    let forcing = format!(
        "-(({a11})*(2*y - pi^2*sin(pi*x)*sin(pi*y)) + 2*({a12})*(pi^2*cos(pi*x)*cos(pi*y) + 2*x) \
         - ({a22})*pi^2*sin(pi*x)*sin(pi*y))",
        a11 = a[0][0],
        a12 = a[0][1],
        a22 = a[1][1]
    );
    let p = config(
        "oscillatory-2d",
        0.25,
        &forcing,
        "sin(pi*x)*sin(pi*y) + x^2*y",
    );
    let u = |q: [f64; 2]| (PI * q[0]).sin() * (PI * q[1]).sin() + q[0] * q[0] * q[1];
    ns.iter()
        .map(|&n| {
            let grid = FvGrid::new(p.domain, [n, n]).unwrap();
            let sol = p.solve_homogenized(a, grid).unwrap();
            let mut e: f64 = 0.0;
            for j in 0..n {
                for i in 0..n {
                    let v = sol.cell_values()[grid.index(i, j)];
                    e = e.max((v - u(grid.centre(i, j))).abs());
                }
            }
            e
        })
        .collect()
}

#[test]
fn the_nine_point_solve_is_second_order_for_a_full_tensor() {
    let errors = tensor_errors([[2.0, 0.8], [0.8, 1.0]], &[32, 64, 128, 256]);
    println!("full tensor: max errors {errors:?}");
    for w in errors.windows(2) {
        let order = (w[0] / w[1]).log2();
        assert!((1.8..=2.2).contains(&order), "{errors:?}");
    }
}

#[test]
fn the_five_point_homogenised_solve_is_second_order_for_a_diagonal_tensor() {
    let errors = tensor_errors([[2.0, 0.0], [0.0, 0.5]], &[32, 64, 128]);
    for w in errors.windows(2) {
        let order = (w[0] / w[1]).log2();
        assert!((1.8..=2.2).contains(&order), "{errors:?}");
    }
}

#[test]
fn u_eps_approaches_the_homogenised_solution_linearly_in_eps() {
    // f = 1, g = 0 with oscillatory-2d: ‖u^ε − ū‖∞ = O(ε) (the first-order corrector
    // ε χ(x/ε)·∇ū), so halving ε about halves it. 32 cells per period keep the discretisation
    // error (~7e-4 relative) well below the differences measured.
    let mut diffs = Vec::new();
    for eps in [0.25, 0.125, 0.0625] {
        let p = config("oscillatory-2d", eps, "1", "0");
        let n = (32.0 / eps) as usize;
        let grid = FvGrid::new(p.domain, [n, n]).unwrap();
        let ue = p.solve_fv(grid).unwrap();
        let ub = p
            .solve_homogenized(p.homogenized_tensor().unwrap(), grid)
            .unwrap();
        let umax = ub.cell_values().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let d = ue
            .cell_values()
            .iter()
            .zip(ub.cell_values())
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        diffs.push(d / umax);
    }
    println!("relative ‖u^ε − ū‖∞ at ε = 1/4, 1/8, 1/16: {diffs:?}");
    for w in diffs.windows(2) {
        let ratio = w[0] / w[1];
        assert!((1.6..=2.5).contains(&ratio), "{diffs:?}");
    }
}

#[test]
fn u_eps_approaches_the_nine_point_homogenised_solution_when_a12_is_not_zero() {
    // The diagonal laminate 2 + sin(2π(y1 + y2)) has ā12 = (√3 − 2)/2 ≈ −0.134. Measured
    // relative ‖u^ε − ū‖∞ at ε = 1/4, 1/8, 1/16: 0.0464, 0.0257, 0.0136 (halving with ε);
    // with ā12 dropped, 0.0509, 0.0298, 0.0207, stalling at the O(1) error of the wrong ū.
    let mut full = Vec::new();
    let mut dropped = Vec::new();
    for eps in [0.25, 0.125, 0.0625] {
        let p = config("2 + sin(2*pi*(y1 + y2))", eps, "1", "0");
        let n = (32.0 / eps) as usize;
        let grid = FvGrid::new(p.domain, [n, n]).unwrap();
        let ue = p.solve_fv(grid).unwrap();
        let a = p.homogenized_tensor().unwrap();
        let diag = [[a[0][0], 0.0], [0.0, a[1][1]]];
        for (abar, out) in [(a, &mut full), (diag, &mut dropped)] {
            let ub = p.solve_homogenized(abar, grid).unwrap();
            let umax = ub.cell_values().iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let d = ue
                .cell_values()
                .iter()
                .zip(ub.cell_values())
                .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
            out.push(d / umax);
        }
    }
    for w in full.windows(2) {
        assert!((1.6..=2.5).contains(&(w[0] / w[1])), "{full:?}");
    }
    assert!(dropped[2] > 1.3 * full[2], "{full:?} {dropped:?}");
}
