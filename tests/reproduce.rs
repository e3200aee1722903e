//! `mspinn reproduce --quick`, the README's main job, end to end.

use std::path::Path;
use std::process::Command;

fn is_png(p: &Path) -> bool {
    std::fs::read(p).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

fn is_svg(p: &Path) -> bool {
    std::fs::read_to_string(p).is_ok_and(|s| s.contains("<svg") && s.contains("</svg>"))
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn quick_report_has_every_figure_and_sane_numbers() {
    let out = std::env::temp_dir().join(format!("mspinn-reproduce-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_mspinn"))
        .args(["reproduce", "--quick", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for fig in ["Fig. 1", "Fig. 2a", "Fig. 2b", "Fig. 3", "Fig. 4"] {
        assert!(
            report.contains(&format!("## {fig}")),
            "report.md lacks {fig}"
        );
    }
    // Every image the report links exists and is valid, in both formats.
    let mut linked = 0;
    for line in report.lines().filter(|l| l.starts_with("![")) {
        let path = &line[line.find("](").unwrap() + 2..line.len() - 1];
        let png = out.join(path);
        assert!(is_png(&png), "{path} is not a valid PNG");
        assert!(
            is_svg(&png.with_extension("svg")),
            "{path} has no valid SVG twin"
        );
        linked += 1;
    }
    assert!(linked >= 14, "only {linked} figures linked");
    // Fig. 2a: ‖K_uu‖_F ∝ ε^s with s near −2.
    let ntk = json(&out.join("fig2a").join("ntk.json"));
    let slope = ntk["fits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["quantity"] == "k_uu_fro")
        .unwrap()["slope"]
        .as_f64()
        .unwrap();
    assert!((-2.5..=-1.5).contains(&slope), "Fig. 2a slope {slope}");
    // Fig. 4: the Darcy PINN is worse than the regression of the same net.
    let err = |m: &str| {
        json(&out.join(format!("fig4-{m}")).join("result.json"))["max_error_mean_network"]
            .as_f64()
            .unwrap()
    };
    assert!(
        err("darcy") > err("regression"),
        "darcy {} vs regression {}",
        err("darcy"),
        err("regression")
    );
    std::fs::remove_dir_all(&out).ok();
}
