//! 2-D collocation sets and boundary point sets.

use mspinn_problem::two_d::POINT_KINDS_2D;
use mspinn_problem::{boundary_points, collocation_2d, parse_point_kind_2d, PointSpec2d, Rect};

fn rect() -> Rect {
    Rect::new([-1.0, 3.0], [0.0, 1.0]).unwrap()
}

#[test]
fn midpoints_are_the_cell_centres_of_an_n_by_n_grid() {
    let r = rect();
    let p = collocation_2d(r, PointSpec2d::Midpoints(16)).unwrap();
    assert_eq!(p.len(), 16);
    // x fastest: cell widths 1 and 1/4, so centres −0.5, 0.5, 1.5, 2.5 and 1/8, 3/8, ...
    assert_eq!(p[0], [-0.5, 0.125]);
    assert_eq!(p[1], [0.5, 0.125]);
    assert_eq!(p[4], [-0.5, 0.375]);
    assert_eq!(p[15], [2.5, 0.875]);
    let e = collocation_2d(r, PointSpec2d::Midpoints(1000)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("--nc = 1000") && msg.contains("961") && msg.contains("1024"),
        "{msg}"
    );
    assert!(collocation_2d(r, PointSpec2d::Midpoints(0)).is_err());
}

#[test]
fn uniform_points_are_seeded_and_inside() {
    let r = rect();
    let a = collocation_2d(r, PointSpec2d::Uniform { n: 4000, seed: 7 }).unwrap();
    let b = collocation_2d(r, PointSpec2d::Uniform { n: 4000, seed: 7 }).unwrap();
    let c = collocation_2d(r, PointSpec2d::Uniform { n: 4000, seed: 8 }).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.iter().all(|&q| r.contains(q)));
    // The mean of 4000 uniform samples is within 4 standard errors of the centre.
    let mean = |k: usize| a.iter().map(|q| q[k]).sum::<f64>() / a.len() as f64;
    assert!((mean(0) - 1.0).abs() < 4.0 * 4.0 / (12.0f64 * 4000.0).sqrt());
    assert!((mean(1) - 0.5).abs() < 4.0 / (12.0f64 * 4000.0).sqrt());
}

#[test]
fn halton_points_are_the_radical_inverses_and_fill_evenly() {
    let unit = Rect::new([0.0, 1.0], [0.0, 1.0]).unwrap();
    let p = collocation_2d(unit, PointSpec2d::Halton(1024)).unwrap();
    let expect = [
        [0.5, 1.0 / 3.0],
        [0.25, 2.0 / 3.0],
        [0.75, 1.0 / 9.0],
        [0.125, 4.0 / 9.0],
    ];
    for (q, e) in p.iter().zip(expect) {
        assert!(
            (q[0] - e[0]).abs() < 1e-15 && (q[1] - e[1]).abs() < 1e-15,
            "{q:?}"
        );
    }
    // Low discrepancy: each of the 4 × 4 sub-squares holds 64 ± 3 points (random points
    // would scatter by ±8 at one standard deviation).
    let mut counts = [0usize; 16];
    for q in &p {
        counts[(q[0] * 4.0) as usize + 4 * (q[1] * 4.0) as usize] += 1;
    }
    assert!(counts.iter().all(|&c| c.abs_diff(64) <= 3), "{counts:?}");
}

#[test]
fn boundary_points_spread_evenly_with_each_corner_once() {
    let r = rect(); // sides 4, 1, 4, 1: perimeter 10
    let p = boundary_points(r, 44).unwrap();
    assert_eq!(p.len(), 44);
    for c in [[-1.0, 0.0], [3.0, 0.0], [3.0, 1.0], [-1.0, 1.0]] {
        assert_eq!(p.iter().filter(|&&q| q == c).count(), 1, "corner {c:?}");
    }
    for (i, q) in p.iter().enumerate() {
        let on = q[0] == -1.0 || q[0] == 3.0 || q[1] == 0.0 || q[1] == 1.0;
        assert!(on && r.contains(*q), "{q:?}");
        assert!(p[i + 1..].iter().all(|w| w != q), "duplicate {q:?}");
    }
    // 40 points shared by length: 16 on each long side and 4 on each short one, plus the
    // corners, so the spacing is 4/17 and 1/5 (within a factor 1.2 of the ideal 10/44).
    let bottom: Vec<f64> = p.iter().filter(|q| q[1] == 0.0).map(|q| q[0]).collect();
    assert_eq!(bottom.len(), 18);
    let left: Vec<&[f64; 2]> = p.iter().filter(|q| q[0] == -1.0).collect();
    assert_eq!(left.len(), 6);
    let mut xs = bottom.clone();
    xs.sort_by(f64::total_cmp);
    for w in xs.windows(2) {
        assert!((w[1] - w[0] - 4.0 / 17.0).abs() < 1e-12, "{w:?}");
    }
    assert!(boundary_points(r, 3).is_err());
}

#[test]
fn point_kinds_parse_by_name() {
    assert_eq!(
        parse_point_kind_2d("Midpoints", 4, 0).unwrap(),
        PointSpec2d::Midpoints(4)
    );
    assert_eq!(
        parse_point_kind_2d("random", 4, 3).unwrap(),
        PointSpec2d::Uniform { n: 4, seed: 3 }
    );
    assert_eq!(
        parse_point_kind_2d("halton", 9, 0).unwrap(),
        PointSpec2d::Halton(9)
    );
    let msg = parse_point_kind_2d("sobol", 4, 0).unwrap_err().to_string();
    assert!(msg.contains("points.kind = `sobol`"), "{msg}");
    assert!(POINT_KINDS_2D.iter().all(|k| msg.contains(k)), "{msg}");
}
