//! Every bad input gets its error, naming the field and the value.

use mspinn_problem::{solve_darcy, Coefficient, OperatorKind, Problem, ProblemError, ScalarFn};

fn darcy(coef: &str, eps: f64) -> Problem {
    Problem {
        name: "test".to_owned(),
        kind: OperatorKind::Darcy,
        domain: (-std::f64::consts::PI, std::f64::consts::PI),
        eps: Some(eps),
        coef: Some(Coefficient::from_name(coef).unwrap()),
        forcing: ScalarFn::constant(1.0),
        boundary: (0.0, 0.0),
        exact: None,
        homogenization: None,
    }
}

#[test]
fn presets_are_valid_and_listed() {
    for &name in Problem::preset_names() {
        let p = Problem::preset(name, None).unwrap();
        assert_eq!(p.name, name);
        p.validate().unwrap();
    }
    let e = Problem::preset("poisson-3d", None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("poisson-3d") && msg.contains("twoscale-darcy"),
        "{msg}"
    );
}

#[test]
fn preset_eps_handling() {
    assert_eq!(
        Problem::preset("twoscale-darcy", None).unwrap().eps,
        Some(1.0 / 32.0)
    );
    assert_eq!(Problem::preset("ntk-4.1", None).unwrap().eps, Some(0.1));
    assert_eq!(
        Problem::preset("ntk-4.1", Some(0.05)).unwrap().eps,
        Some(0.05)
    );
    let e = Problem::preset("fp-poisson", Some(0.1)).unwrap_err();
    assert!(matches!(e, ProblemError::PresetHasNoEps { .. }), "{e}");
    for bad in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        let e = Problem::preset("twoscale-darcy", Some(bad)).unwrap_err();
        assert!(
            matches!(e, ProblemError::InvalidValue { ref field, .. } if field == "eps"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn eps_must_be_positive_and_finite() {
    for bad in [0.0, -1.0, f64::NAN] {
        let e = darcy("paper-4.1", bad).validate().unwrap_err();
        assert!(e.to_string().starts_with("eps = "), "{e}");
    }
}

#[test]
fn non_positive_coefficient_reports_where_and_how_much() {
    let e = darcy("sin(2*pi*y)", 0.1).validate().unwrap_err();
    match &e {
        ProblemError::NonPositiveCoefficient { x, min, .. } => {
            assert!(*min <= -0.99, "{min}");
            assert!((-std::f64::consts::PI..=std::f64::consts::PI).contains(x));
            // a(x/ε) really is that small there.
            assert!((0.1f64.recip() * x * 2.0 * std::f64::consts::PI).sin() <= -0.99);
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("x = ") && msg.contains("minimum"), "{msg}");
    // a = 0.99 + sin(2πy) dips below zero for only ~9% of each period, and at ε = 1e-3 the
    // domain holds ~6000 periods: a grid that did not resolve ε could miss it.
    assert!(darcy("0.99 + sin(2*pi*y)", 1e-3).validate().is_err());
    assert!(darcy("1.01 + sin(2*pi*y)", 1e-3).validate().is_ok());
}

#[test]
fn bad_domains() {
    for domain in [
        (1.0, 1.0),
        (2.0, -2.0),
        (f64::NAN, 1.0),
        (0.0, f64::INFINITY),
    ] {
        let mut p = darcy("paper-4.1", 0.1);
        p.domain = domain;
        assert!(
            matches!(p.validate(), Err(ProblemError::InvalidDomain { .. })),
            "{domain:?}"
        );
    }
}

#[test]
fn non_finite_data_are_caught_on_the_grid() {
    let mut p = darcy("paper-4.1", 0.1);
    p.forcing = ScalarFn::parse("1/x", "x").unwrap();
    match p.validate() {
        Err(ProblemError::NonFinite { field, x, .. }) => {
            assert_eq!(field, "forcing");
            assert_eq!(x, 0.0);
        }
        other => panic!("{other:?}"),
    }
    let mut p = darcy("paper-4.1", 0.1);
    p.forcing = ScalarFn::parse("ln(x)", "x").unwrap();
    assert!(matches!(p.validate(), Err(ProblemError::NonFinite { .. })));
    let mut p = darcy("paper-4.1", 0.1);
    p.boundary.1 = f64::NAN;
    let e = p.validate().unwrap_err();
    assert!(e.to_string().starts_with("boundary.b = NaN"), "{e}");
}

#[test]
fn darcy_needs_coefficient_and_eps() {
    let mut p = darcy("paper-4.1", 0.1);
    p.coef = None;
    assert!(
        matches!(p.validate(), Err(ProblemError::MissingField { ref field, .. }) if field == "coefficient")
    );
    assert!(p.pde_rows(&[0.0]).is_err());
    let mut p = darcy("paper-4.1", 0.1);
    p.eps = None;
    assert!(
        matches!(p.validate(), Err(ProblemError::MissingField { ref field, .. }) if field == "eps")
    );
}

#[test]
fn coefficient_errors() {
    assert!(matches!(
        Coefficient::from_name("sin("),
        Err(ProblemError::Expression { ref field, .. }) if field == "coefficient"
    ));
    assert!(Coefficient::from_name("z*y").is_err());
    assert!(Coefficient::parse("2 + sin(y)", 0.0).is_err());
    assert!(Coefficient::parse("2 + sin(y)", f64::NAN).is_err());
    let c = Coefficient::from_name("paper-4.2").unwrap();
    assert_eq!(c.period(), 2.0 * std::f64::consts::PI);
    assert_eq!(c.name(), "paper-4.2");
}

#[test]
fn pde_rows_errors_and_values() {
    let p = Problem::preset("ntk-4.1", None).unwrap();
    assert!(matches!(
        p.pde_rows(&[]),
        Err(ProblemError::EmptyPoints { .. })
    ));
    assert!(matches!(
        p.pde_rows(&[0.0, f64::NAN]),
        Err(ProblemError::NonFinite { .. })
    ));
    let eps = 0.1;
    let x = [-1.0, 0.013, 2.0];
    let rows = p.pde_rows(&x).unwrap();
    let c = Coefficient::paper_4_1();
    for (i, &t) in x.iter().enumerate() {
        assert_eq!(rows.c2[i], -c.a(t / eps));
        assert_eq!(rows.c1[i], -c.da(t / eps) / eps);
        assert_eq!((rows.c0[i], rows.g[i]), (0.0, 1.0));
    }
    assert_eq!(rows.len(), 3);
    let mut q = p.clone();
    q.forcing = ScalarFn::parse("1/x", "x").unwrap();
    assert!(matches!(
        q.pde_rows(&[0.0]),
        Err(ProblemError::NonFinite { .. })
    ));
}

#[test]
fn solver_input_errors() {
    let one = |_: f64| 1.0;
    let ok = solve_darcy((0.0, 1.0), &one, &one, (0.0, 0.0), 0.1, &[0.5]);
    assert!(ok.is_ok());
    assert!(matches!(
        solve_darcy((1.0, 0.0), &one, &one, (0.0, 0.0), 0.1, &[0.5]),
        Err(ProblemError::InvalidDomain { .. })
    ));
    assert!(matches!(
        solve_darcy((0.0, 1.0), &one, &one, (0.0, 0.0), 0.1, &[]),
        Err(ProblemError::EmptyPoints { .. })
    ));
    assert!(matches!(
        solve_darcy((0.0, 1.0), &one, &one, (0.0, 0.0), 0.1, &[1.5]),
        Err(ProblemError::OutOfDomain { .. })
    ));
    assert!(matches!(
        solve_darcy((0.0, 1.0), &one, &one, (0.0, 0.0), 0.0, &[0.5]),
        Err(ProblemError::InvalidValue { .. })
    ));
    assert!(matches!(
        solve_darcy((0.0, 1.0), &one, &one, (f64::NAN, 0.0), 0.1, &[0.5]),
        Err(ProblemError::InvalidValue { .. })
    ));
    assert!(matches!(
        solve_darcy((0.0, 1.0), &one, &one, (0.0, 0.0), 1e-300, &[0.5]),
        Err(ProblemError::TooManyPanels { .. })
    ));
    assert!(matches!(
        solve_darcy((-1.0, 1.0), &|x: f64| x, &one, (0.0, 0.0), 0.1, &[0.5]),
        Err(ProblemError::NonPositiveCoefficient { .. })
    ));
    assert!(matches!(
        solve_darcy(
            (-1.0, 1.0),
            &one,
            &|x: f64| 1.0 / x,
            (0.0, 0.0),
            2.0,
            &[0.5]
        ),
        Err(ProblemError::NonFinite { .. }) | Err(ProblemError::Unresolved { .. })
    ));
}

#[test]
fn operator_kind_round_trips() {
    for k in [
        OperatorKind::Darcy,
        OperatorKind::Poisson,
        OperatorKind::Regression,
    ] {
        assert_eq!(k.to_string().parse::<OperatorKind>().unwrap(), k);
    }
    assert!("heat".parse::<OperatorKind>().is_err());
}
