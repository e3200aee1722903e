//! a > 0 is checked robustly: a dip far narrower than any grid is found from the critical points
//! of a (a' is symbolic), and the period is blamed on `period`, not on `coefficient`.

use mspinn_problem::{Coefficient, OperatorKind, Problem, ProblemError, ScalarFn};

const NARROW_DIP: &str = "1-2*exp(-100000000*(y-0.3137)^2)";

fn darcy(coef: Coefficient, eps: f64) -> Problem {
    Problem {
        name: "test".to_owned(),
        kind: OperatorKind::Darcy,
        domain: (-std::f64::consts::PI, std::f64::consts::PI),
        eps: Some(eps),
        coef: Some(coef),
        forcing: ScalarFn::constant(1.0),
        boundary: (0.0, 0.0),
        exact: None,
        homogenization: None,
    }
}

#[test]
fn a_narrow_dip_is_found_at_its_minimum() {
    // Passed before: positivity was only sampled on a grid (~10⁻² apart in y here), and the dip
    // is ~10⁻⁴ wide.
    let coef = Coefficient::parse(NARROW_DIP, 1.0).unwrap();
    let e = darcy(coef, 1.0).validate().unwrap_err();
    match &e {
        ProblemError::NonPositiveCoefficient {
            field, x, y, min, ..
        } => {
            assert_eq!(field, "coefficient");
            assert!((y - 0.3137).abs() < 1e-9, "y = {y}");
            assert!((min + 1.0).abs() < 1e-9, "a = {min}");
            assert!((x - y).abs() < 1e-15, "x = {x} with eps = 1");
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.starts_with("coefficient: ") && msg.contains("a(y) = -1 at y = 0.3136999"),
        "{msg}"
    );
}

#[test]
fn a_narrow_dip_is_found_at_small_eps_and_in_the_harmonic_mean() {
    // The same dip repeated every period, ε = 0.01: hundreds of periods in the domain.
    let periodic = "1-2*exp(-100000000*sin(pi*(y-0.3137))^2)";
    let coef = Coefficient::parse(periodic, 1.0).unwrap();
    let e = darcy(coef.clone(), 0.01).validate().unwrap_err();
    match e {
        ProblemError::NonPositiveCoefficient { y, x, min, .. } => {
            assert!((y - y.floor() - 0.3137).abs() < 1e-6, "y = {y}");
            assert!(
                y < 0.0,
                "y = {y}: the dip of the first period scanned is at y < 0"
            );
            assert!((x - 0.01 * y).abs() < 1e-12, "x = {x}");
            assert!(min < -0.99, "{min}");
        }
        other => panic!("{other:?}"),
    }
    // The harmonic mean (homogenised coefficient) runs the same check over one period.
    let e = coef.try_harmonic_mean().unwrap_err();
    assert!(
        matches!(e, ProblemError::NonPositiveCoefficient { ref field, y, .. }
            if field == "coefficient" && (y - 0.3137).abs() < 1e-6),
        "{e}"
    );
}

#[test]
fn a_dip_between_critical_points_that_touches_zero_is_refused() {
    // a touches 0 exactly at y = 0.5 (a double root): a grid never sees a ≤ 0 unless a point
    // lands on 0.5 exactly, but the critical point of a is there.
    let coef = Coefficient::parse("(y-0.5001)^2*1000000", 1.0).unwrap();
    let e = coef.check_positive((0.0, 1.0)).unwrap_err();
    match e {
        ProblemError::NonPositiveCoefficient { y, min, .. } => {
            assert!((y - 0.5001).abs() < 1e-6, "y = {y}");
            assert!(min <= 0.0 && min > -1e-12, "{min}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn smooth_positive_coefficients_pass_and_report_their_minimum() {
    for (name, period, want) in [
        ("paper-4.1", 1.0, 1.0 / 4.1),
        ("paper-4.2", 2.0 * std::f64::consts::PI, 1.0 / 4.1),
    ] {
        let coef = Coefficient::from_name(name).unwrap();
        let m = coef.check_positive((0.0, period)).unwrap();
        assert!((m.value - want).abs() < 1e-14, "{name}: {m:?}");
        darcy(coef, 0.01).validate().unwrap();
    }
    // A narrow positive bump or a shallow narrow dip are fine.
    let coef = Coefficient::parse("1-0.5*exp(-100000000*(y-0.3137)^2)", 1.0).unwrap();
    let m = coef.check_positive((0.0, 1.0)).unwrap();
    assert!(
        (m.value - 0.5).abs() < 1e-9 && (m.y - 0.3137).abs() < 1e-6,
        "{m:?}"
    );
}

#[test]
fn a_step_the_quadrature_cannot_resolve_is_refused() {
    // A jump from 1 to 3 over ~1e-10 in y: narrower than the reference solver's finest panel
    // (P/4/2²⁴ ≈ 1.5e-8), so neither the solver nor the check can resolve 1/a there.
    let coef = Coefficient::parse("2+tanh(10000000000*(y-0.3))", 1.0).unwrap();
    let e = coef.check_positive((0.0, 1.0)).unwrap_err();
    assert!(
        matches!(e, ProblemError::UnresolvableCoefficient { ref field, y, .. }
            if field == "coefficient" && (y - 0.3).abs() < 1e-3),
        "{e}"
    );
    assert!(e.to_string().starts_with("coefficient: "), "{e}");
}

#[test]
fn non_finite_coefficient_names_the_field() {
    let coef = Coefficient::parse("1/(y-0.25)", 1.0).unwrap();
    let e = darcy(coef, 1.0).validate().unwrap_err();
    assert!(
        matches!(e, ProblemError::NonFinite { ref field, .. } | ProblemError::NonPositiveCoefficient { ref field, .. } if field == "coefficient"),
        "{e}"
    );
}

#[test]
fn a_zero_period_is_blamed_on_the_period() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = Coefficient::parse("2+sin(y)", bad).unwrap_err();
        assert!(
            matches!(e, ProblemError::InvalidPeriod { ref field, .. } if field == "period"),
            "{bad}: {e:?}"
        );
        // The CLI relabels coefficient errors with `in_field("problem.coefficient")`; the
        // period stays the period (it used to read "problem.coefficient = 0 is invalid").
        let msg = e.in_field("problem.coefficient").to_string();
        assert!(msg.starts_with("problem.period = "), "{msg}");
        assert!(!msg.contains("coefficient ="), "{msg}");
    }
}

#[test]
fn the_check_is_cheap_enough_for_every_validation() {
    let coef = Coefficient::from_name("paper-4.1").unwrap();
    let t = std::time::Instant::now();
    darcy(coef, 1e-3).validate().unwrap();
    let took = t.elapsed();
    eprintln!("validate at eps = 1e-3 took {took:?}");
    assert!(took.as_secs_f64() < 20.0, "{took:?}");
}
