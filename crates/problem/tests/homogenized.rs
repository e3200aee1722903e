//! Harmonic means and homogenised solutions.

mod common;

use common::{grid, max_abs};
use mspinn_problem::{Coefficient, Problem};

#[test]
fn harmonic_mean_of_paper_coefficients_is_1_over_2_1() {
    // 1/a = 2.1 + 2 sin(·) averages to 2.1 over a period.
    for c in [Coefficient::paper_4_1(), Coefficient::paper_4_2()] {
        let m = c.harmonic_mean();
        assert!((m - 1.0 / 2.1).abs() < 1e-13, "{}: {m}", c.name());
    }
}

#[test]
fn harmonic_mean_of_2_plus_sin_is_sqrt_3() {
    // mean of 1/(2 + sin 2πy) = 1/sqrt(2² − 1).
    let c = Coefficient::parse("2 + sin(2*pi*y)", 1.0).unwrap();
    assert!((c.harmonic_mean() - 3f64.sqrt()).abs() < 1e-12);
    let c = Coefficient::from_name("2 + sin(2*pi*y)").unwrap();
    assert!((c.harmonic_mean() - 3f64.sqrt()).abs() < 1e-12);
}

#[test]
fn harmonic_mean_of_non_positive_coefficient_is_an_error() {
    let c = Coefficient::parse("sin(2*pi*y)", 1.0).unwrap();
    assert!(c.harmonic_mean().is_nan());
    let e = c.try_harmonic_mean().unwrap_err();
    assert!(e.to_string().contains("> 0"), "{e}");
}

#[test]
fn homogenized_solution_of_twoscale_darcy() {
    let eps = 1.0 / 32.0;
    let p = Problem::preset("twoscale-darcy", Some(eps)).unwrap();
    let x = grid(1000);
    let ubar = p.homogenized_solution(&x).unwrap().unwrap();
    assert!(ubar.iter().all(|v| v.is_finite()));
    assert!(ubar[0].abs() < 1e-13 && ubar[999].abs() < 1e-12);
    // It is a different function from u^ε (the paper's point), but of the same size.
    let u = max_abs(x.iter().map(|&t| common::u(t, eps)));
    let ub = max_abs(ubar.iter().copied());
    assert!(ub > 0.1 * u && ub < 10.0 * u, "{ub} vs {u}");
    // The other twoscale presets compare with the same ū.
    for name in ["twoscale-poisson", "twoscale-regression"] {
        let q = Problem::preset(name, Some(eps)).unwrap();
        assert_eq!(q.homogenized_solution(&x).unwrap().unwrap(), ubar, "{name}");
    }
    assert!(Problem::preset("fp-poisson", None)
        .unwrap()
        .homogenized_solution(&x)
        .unwrap()
        .is_none());
}

#[test]
fn homogenized_solution_with_constant_forcing_is_the_parabola() {
    // ntk-4.1: −ā ū'' = 1 on (−π, π), ū(±π) = 0 → ū = (π² − x²)/(2ā), ā = 1/2.1.
    let p = Problem::preset("ntk-4.1", None).unwrap();
    let x = grid(101);
    let ubar = p.homogenized_solution(&x).unwrap().unwrap();
    let pi2 = std::f64::consts::PI.powi(2);
    for (&t, v) in x.iter().zip(&ubar) {
        assert!((v - 2.1 * (pi2 - t * t) / 2.0).abs() < 1e-12, "x = {t}");
    }
    // And the oscillatory solution approaches it as ε → 0.
    let err = |eps: f64| {
        let q = Problem::preset("ntk-4.1", Some(eps)).unwrap();
        let u = q.reference_solution(&x).unwrap();
        max_abs(u.iter().zip(&ubar).map(|(s, v)| s.0 - v))
    };
    let (e1, e2) = (err(0.1), err(0.01));
    assert!(e2 < 0.2 * e1, "{e1} {e2}");
}
