//! The quadrature solver against closed forms.

mod common;

use std::time::Instant;

use common::{grid, max_abs};
use mspinn_problem::{solve_darcy, Coefficient, Problem};

/// Solves twoscale-darcy with the solver (not the `exact` field) and compares with eq. (25).
fn twoscale_errors(eps: f64, n: usize) -> (f64, f64, f64) {
    let p = Problem::preset("twoscale-darcy", Some(eps)).unwrap();
    let coef = p.coef.clone().unwrap();
    let x = grid(n);
    let start = Instant::now();
    let sol = solve_darcy(
        p.domain,
        &|t| coef.a(t / eps),
        &|t| p.forcing.eval(t),
        p.boundary,
        eps * coef.period(),
        &x,
    )
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let u_scale = max_abs(x.iter().map(|&t| common::u(t, eps)));
    let du_scale = max_abs(x.iter().map(|&t| common::du(t, eps)));
    let eu = max_abs(x.iter().zip(&sol).map(|(&t, s)| s.0 - common::u(t, eps))) / u_scale;
    let edu = max_abs(x.iter().zip(&sol).map(|(&t, s)| s.1 - common::du(t, eps))) / du_scale;
    (eu, edu, secs)
}

/// Accuracy only: speed belongs in benchmarks, not in a test that a loaded machine can fail
/// (the time is printed for the curious: ~0.5 s at ε = 1/1000 on an idle core).
#[test]
fn solver_reproduces_eq_25() {
    for eps in [1.0 / 10.0, 1.0 / 32.0, 1.0 / 100.0, 1.0 / 1000.0] {
        let (eu, edu, secs) = twoscale_errors(eps, 1000);
        eprintln!("eps = {eps}: rel err u {eu:e}, u' {edu:e}, {secs:.3} s");
        assert!(eu <= 1e-10, "eps = {eps}: relative error of u {eu:e}");
        assert!(edu <= 1e-10, "eps = {eps}: relative error of u' {edu:e}");
    }
}

#[test]
fn solver_at_unsorted_points_and_endpoints() {
    let eps = 1.0 / 32.0;
    let p = Problem::preset("twoscale-darcy", Some(eps)).unwrap();
    let coef = p.coef.clone().unwrap();
    let x = [
        3.0,
        -std::f64::consts::PI,
        0.1,
        std::f64::consts::PI,
        -2.5,
        0.1,
    ];
    let sol = solve_darcy(
        p.domain,
        &|t| coef.a(t / eps),
        &|t| p.forcing.eval(t),
        (0.0, 0.0),
        eps * coef.period(),
        &x,
    )
    .unwrap();
    for (&t, s) in x.iter().zip(&sol) {
        assert!((s.0 - common::u(t, eps)).abs() < 1e-11, "x = {t}");
    }
    assert!(sol[1].0.abs() < 1e-13 && sol[3].0.abs() < 1e-13);
}

#[test]
fn poisson_reference_without_closed_form_matches_eq_4() {
    // fp-poisson with its exact solution hidden: the solver (a ≡ 1) must find eq. (4)'s u.
    let mut p = Problem::preset("fp-poisson", None).unwrap();
    let exact = p.exact.take().unwrap();
    let x = grid(1001);
    let sol = p.reference_solution(&x).unwrap();
    for (&t, s) in x.iter().zip(&sol) {
        assert!((s.0 - exact.eval(t)).abs() < 1e-12, "u at {t}");
        assert!((s.1 - exact.deriv(t)).abs() < 1e-11, "u' at {t}");
    }
}

#[test]
fn ntk_problem_reference_satisfies_the_first_integral() {
    // f = 1: a(x/ε) u'(x) = C − (x − a) for one constant C, and u vanishes at both ends.
    let eps = 1.0 / 10.0;
    let p = Problem::preset("ntk-4.1", Some(eps)).unwrap();
    assert!(p.exact.is_none());
    let x = grid(501);
    let sol = p.reference_solution(&x).unwrap();
    let coef = Coefficient::paper_4_1();
    let flux: Vec<f64> = x
        .iter()
        .zip(&sol)
        .map(|(&t, s)| coef.a(t / eps) * s.1 + (t - p.domain.0))
        .collect();
    let c = flux[0];
    assert!(max_abs(flux.iter().map(|f| f - c)) < 1e-12 * c.abs().max(1.0));
    assert!(sol[0].0.abs() < 1e-14 && sol[500].0.abs() < 1e-12);
    // And C is the one that closes the boundary condition: ∫ (C − (x − a))/a(x/ε) = 0.
    assert!(max_abs(sol.iter().map(|s| s.0)) > 0.1);
}

#[test]
fn solver_handles_nonzero_boundary_data() {
    // −u'' = 0, u(0) = 1, u(2) = 5: u = 1 + 2x.
    let sol = solve_darcy(
        (0.0, 2.0),
        &|_| 1.0,
        &|_| 0.0,
        (1.0, 5.0),
        0.5,
        &[0.0, 0.5, 2.0],
    )
    .unwrap();
    for (x, s) in [0.0, 0.5, 2.0].iter().zip(&sol) {
        assert!((s.0 - (1.0 + 2.0 * x)).abs() < 1e-14);
        assert!((s.1 - 2.0).abs() < 1e-14);
    }
}

#[test]
fn regression_without_exact_has_no_reference() {
    let mut p = Problem::preset("twoscale-regression", None).unwrap();
    p.exact = None;
    let e = p.reference_solution(&[0.0]).unwrap_err();
    assert!(e.to_string().contains("no exact solution"), "{e}");
}
