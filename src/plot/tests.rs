//! Charts rendered to disk and checked as valid SVG and PNG.

use super::*;
use SeriesStyle::*;

/// Fresh per-test directory; kept for inspection when `PLOT_KEEP` is set.
fn run_in_dir(name: &str, f: impl FnOnce(&Path)) {
    let dir = std::env::temp_dir().join(format!("plot_test_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    f(&dir);
    if std::env::var_os("PLOT_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn axes(title: &str, log: bool) -> Axes<'_> {
    let (x_label, y_label) = ("x label", "y label");
    Axes {
        title,
        x_label,
        y_label,
        log_x: log,
        log_y: log,
    }
}

fn ser<'a>(name: &'a str, x: &'a [f64], y: &'a [f64], style: SeriesStyle) -> Series<'a> {
    Series { name, x, y, style }
}

fn assert_outputs(stem: &Path) {
    for ext in [".svg", ".png"] {
        let p = suffixed(stem, ext);
        assert!(is_valid_image(&p), "{} is not a valid image", p.display());
    }
    assert!(!suffixed(stem, ".svg.tmp").exists() && !suffixed(stem, ".tmp.png").exists());
}

#[test]
fn log_log_chart() {
    run_in_dir("loglog", |dir| {
        let n: Vec<f64> = (0..12).map(|k| 2f64.powi(k + 3)).collect();
        let e1: Vec<f64> = n.iter().map(|n| 3.0 / n).collect();
        let mut e2: Vec<f64> = n.iter().map(|n| 50.0 / (n * n)).collect();
        e2[3] = -1.0; // non-positive on a log axis: skipped, the line breaks there
        let s = [
            ser("first order", &n, &e1, LinePoints),
            ser("2nd", &n, &e2, Dashed),
        ];
        let stem = dir.join("loglog");
        line_chart(&stem, &axes("Convergence", true), &s).unwrap();
        assert_outputs(&stem);
    });
}

#[test]
fn linear_chart_with_nans() {
    run_in_dir("linear", |dir| {
        let x: Vec<f64> = (0..200).map(|i| i as f64 * 0.05).collect();
        let mut a: Vec<f64> = x.iter().map(|x| x.sin()).collect();
        (a[50], a[51]) = (f64::NAN, f64::INFINITY);
        let b: Vec<f64> = x.iter().map(|x| 0.5 * (2.0 * x).cos()).collect();
        let xc: Vec<f64> = x.iter().step_by(10).copied().collect();
        let c: Vec<f64> = xc.iter().map(|x| (-0.3 * x).exp() - 0.5).collect();
        let (a, b, c) = (
            ser("sin t", &x, &a, Line),
            ser("", &x, &b, Dashed),
            ser("samples", &xc, &c, Points),
        );
        let stem = dir.join("linear.v2"); // the dot must not be taken for an extension
        line_chart(&stem, &axes("Three series", false), &[a, b, c]).unwrap();
        assert_outputs(&stem);
    });
}

#[test]
fn heatmap_renders() {
    run_in_dir("heat", |dir| {
        let xs: Vec<f64> = (0..60).map(|i| i as f64 * 100.0).collect();
        let ys: Vec<f64> = (1..=40).map(|k| k as f64).collect();
        let row = |it: f64| {
            ys.iter()
                .map(|&f| (-it * 3e-3 / f).exp() / (f * f))
                .collect()
        };
        let mut values: Vec<Vec<f64>> = xs.iter().map(|&it| row(it)).collect();
        values[0][0] = 0.0; // non-positive → lowest colour
        values[1][1] = f64::NAN; // skipped
        let (stem, title) = (dir.join("heat"), "Spectral residual");
        heatmap(
            &stem,
            title,
            "iteration",
            "frequency k",
            &xs,
            &ys,
            &values,
            true,
        )
        .unwrap();
        assert_outputs(&stem);
        let stem = dir.join("heat_flat"); // single column of constant values
        let flat = [vec![5.0, 5.0]];
        heatmap(&stem, "Flat", "x", "y", &[1.0], &[2.0, 3.0], &flat, false).unwrap();
        assert_outputs(&stem);
    });
}

#[test]
fn empty_input_errors() {
    run_in_dir("empty", |dir| {
        let (nan, neg) = ([f64::NAN], [-1.0, 0.0]);
        let (a, b) = (ser("a", &[], &[], Line), ser("b", &neg, &[1.0, 2.0], Line));
        let c = ser("c", &nan, &nan, Points);
        assert!(line_chart(&dir.join("e"), &axes("t", true), &[a, b, c]).is_err());
        assert!(line_chart(&dir.join("e"), &axes("t", false), &[]).is_err());
        assert!(heatmap(&dir.join("h"), "t", "x", "y", &[], &[], &[], true).is_err());
        assert!(!is_valid_image(&dir.join("e.png")));
        std::fs::write(dir.join("bad.svg"), "<svg>").unwrap();
        assert!(!is_valid_image(&dir.join("bad.svg")));
    });
}

/// Over more than a decade a log axis keeps the ticks at 1, 2 and 5 per decade (the labels of
/// 6…9 overlapped).
#[test]
fn log_axis_ticks_stay_readable() {
    use plotters::coord::ranged1d::Ranged;
    let wide = super::axis::LogAxis::new(9e-4, 7e-2).key_points(40);
    assert!(!wide.is_empty());
    for v in &wide {
        let m = v / 10f64.powf(v.log10().floor());
        assert!(
            [1.0, 2.0, 5.0, 10.0]
                .iter()
                .any(|k| (m / k - 1.0).abs() < 1e-6),
            "tick {v} in {wide:?}"
        );
    }
    assert_eq!(wide.len(), 6, "1, 2, 5 in each of two decades: {wide:?}");
}
