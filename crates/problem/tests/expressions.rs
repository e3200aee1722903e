//! ScalarFn: values, symbolic derivatives, constants and errors.

use mspinn_problem::{ProblemError, ScalarFn};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn derivatives_match_closed_forms() {
    type Case = (&'static str, fn(f64) -> f64, fn(f64) -> f64);
    let cases: [Case; 4] = [
        (
            "sin(3*x)*exp(x)",
            |x| (3.0 * x).sin() * x.exp(),
            |x| (3.0 * (3.0 * x).cos() + (3.0 * x).sin()) * x.exp(),
        ),
        ("x^3 - 2*x", |x| x.powi(3) - 2.0 * x, |x| 3.0 * x * x - 2.0),
        (
            "1/(2.1 + 2*sin(2*pi*x))",
            |x| 1.0 / (2.1 + 2.0 * (2.0 * std::f64::consts::PI * x).sin()),
            |x| {
                let tp = 2.0 * std::f64::consts::PI;
                let d = 2.1 + 2.0 * (tp * x).sin();
                -2.0 * tp * (tp * x).cos() / (d * d)
            },
        ),
        (
            "tanh(x)*ln(2 + x)",
            |x| x.tanh() * (2.0 + x).ln(),
            |x| (1.0 - x.tanh().powi(2)) * (2.0 + x).ln() + x.tanh() / (2.0 + x),
        ),
    ];
    for (expr, f, df) in cases {
        let g = ScalarFn::parse(expr, "x").unwrap();
        assert_eq!(g.source(), expr);
        for i in 0..50 {
            let x = -1.5 + 3.0 * i as f64 / 49.0;
            assert!(close(g.eval(x), f(x), 1e-14), "{expr} at {x}");
            assert!(
                close(g.deriv(x), df(x), 1e-13),
                "{expr}' at {x}: {} vs {}",
                g.deriv(x),
                df(x)
            );
        }
    }
}

#[test]
fn constants_and_named_constants() {
    let c = ScalarFn::constant(2.5);
    assert_eq!((c.eval(7.0), c.deriv(7.0)), (2.5, 0.0));
    let c = ScalarFn::parse("3*pi", "x").unwrap();
    assert_eq!(c.eval(0.0), 3.0 * std::f64::consts::PI);
    assert_eq!(c.deriv(1.0), 0.0);
    let eps = 1.0 / 32.0;
    let g = ScalarFn::parse_with("eps*sin(y/eps)", "y", &[("eps", eps)]).unwrap();
    assert!(close(g.eval(0.3), eps * (0.3 / eps).sin(), 1e-15));
    assert!(close(g.deriv(0.3), (0.3 / eps).cos(), 1e-14));
    assert_eq!(g.constants(), &[("eps".to_owned(), eps)]);
    // PI and π are exmex's own.
    assert_eq!(
        ScalarFn::parse("PI", "x").unwrap().eval(0.0),
        std::f64::consts::PI
    );
}

#[test]
fn malformed_expression_is_an_error() {
    for bad in ["sin(", "", "   ", "2*", "(x", "x)"] {
        match ScalarFn::parse(bad, "x") {
            Err(ProblemError::Expression { expr, .. }) => assert_eq!(expr, bad),
            other => panic!("`{bad}`: {other:?}"),
        }
    }
}

#[test]
fn unknown_variable_is_an_error() {
    let e = ScalarFn::parse("z*y", "y").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("`z`") && msg.contains("z*y"), "{msg}");
    assert!(ScalarFn::parse("x", "y").is_err());
    // `eps` is a variable unless bound.
    assert!(ScalarFn::parse("sin(x/eps)", "x").is_err());
    // exmex has no exponent syntax; `1e-3` must not silently become something else.
    assert!(ScalarFn::parse("1e-3*x", "x").is_err());
}

#[test]
fn bad_constants_are_errors() {
    let e = ScalarFn::parse_with("eps*x", "x", &[("eps", f64::NAN)]).unwrap_err();
    assert!(
        matches!(e, ProblemError::InvalidValue { ref field, .. } if field == "eps"),
        "{e}"
    );
    assert!(ScalarFn::parse_with("x", "x", &[("x", 1.0)]).is_err());
    assert!(ScalarFn::parse_with("x", "x", &[("2a", 1.0)]).is_err());
}

#[test]
fn field_names_can_be_attached() {
    let e = ScalarFn::parse("sin(", "x")
        .unwrap_err()
        .in_field("problem.forcing");
    assert!(e.to_string().starts_with("problem.forcing:"), "{e}");
}

#[test]
fn overlong_expression_is_an_error_not_a_hang() {
    let long = vec!["x"; 600].join("+");
    let e = ScalarFn::parse(&long, "x").unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
}

#[test]
fn parsing_works_on_a_small_stack() {
    // exmex's differentiation is recursive; parsing must not depend on the caller's stack.
    let h = std::thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(|| {
            ScalarFn::parse_with(mspinn_problem::TWOSCALE_DARCY_FORCING, "x", &[("eps", 0.1)])
                .map(|f| f.deriv(0.2))
        })
        .unwrap();
    assert!(h.join().unwrap().unwrap().is_finite());
}

#[test]
fn problem_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<ScalarFn>();
    check::<mspinn_problem::Problem>();
    check::<mspinn_problem::Coefficient>();
}
