//! Collocation sets.

use mspinn_problem::{collocation, parse_point_kind, PointSpec, ProblemError};

#[test]
fn endpoints_and_midpoints() {
    assert_eq!(
        collocation((0.0, 1.0), PointSpec::Endpoints(5)).unwrap(),
        vec![0.0, 0.25, 0.5, 0.75, 1.0]
    );
    assert_eq!(
        collocation((0.0, 1.0), PointSpec::Midpoints(4)).unwrap(),
        vec![0.125, 0.375, 0.625, 0.875]
    );
    let pi = std::f64::consts::PI;
    let x = collocation((-pi, pi), PointSpec::Endpoints(512)).unwrap();
    assert_eq!((x[0], x[511], x.len()), (-pi, pi, 512));
}

#[test]
fn random_points_are_reproducible_sorted_and_in_range() {
    let spec = PointSpec::Random { n: 300, seed: 7 };
    let a = collocation((-2.0, 3.0), spec).unwrap();
    let b = collocation((-2.0, 3.0), spec).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 300);
    assert!(a.iter().all(|&x| (-2.0..=3.0).contains(&x)));
    assert!(a.windows(2).all(|w| w[0] <= w[1]));
    let c = collocation((-2.0, 3.0), PointSpec::Random { n: 300, seed: 8 }).unwrap();
    assert_ne!(a, c);
}

#[test]
fn bad_point_sets_are_errors() {
    for spec in [
        PointSpec::Endpoints(0),
        PointSpec::Midpoints(0),
        PointSpec::Random { n: 0, seed: 1 },
    ] {
        assert!(matches!(
            collocation((0.0, 1.0), spec),
            Err(ProblemError::EmptyPoints { .. })
        ));
    }
    assert!(matches!(
        collocation((0.0, 1.0), PointSpec::Endpoints(1)),
        Err(ProblemError::TooFewPoints { n: 1, min: 2, .. })
    ));
    assert!(matches!(
        collocation((1.0, 1.0), PointSpec::Midpoints(3)),
        Err(ProblemError::InvalidDomain { .. })
    ));
    assert!(collocation((0.0, f64::INFINITY), PointSpec::Midpoints(3)).is_err());
}

#[test]
fn point_kinds_parse() {
    assert_eq!(
        parse_point_kind("endpoints", 3, 0).unwrap(),
        PointSpec::Endpoints(3)
    );
    assert_eq!(
        parse_point_kind("Midpoints", 3, 0).unwrap(),
        PointSpec::Midpoints(3)
    );
    assert_eq!(
        parse_point_kind("random", 3, 9).unwrap(),
        PointSpec::Random { n: 3, seed: 9 }
    );
    let e = parse_point_kind("chebyshev", 3, 0).unwrap_err();
    assert!(e.to_string().contains("chebyshev"), "{e}");
}
