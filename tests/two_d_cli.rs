//! `mspinn train` and `mspinn ntk` on a 2-D run file (issue 18): what lands on disk and in
//! the JSON, and the errors that name the way out.

use std::path::Path;

mod common;
use common::{fresh_dir, mspinn};

const RUN: &str = r#"
[problem]
domain = [[0, 1], [0, 1]]
eps = "1/4"
coefficient = "oscillatory-2d"
manufactured = "sin(pi*x)*sin(pi*y)*(1 + eps*sin(2*pi*x/eps)*sin(2*pi*y/eps))"

[network]
widths = [8, 8]

[points]
kind = "midpoints"
n = 64

[training]
schedule = "20@1e-2,lm:5"
lambda = 10.0
trials = 2
"#;

fn is_png(p: &Path) -> bool {
    std::fs::read(p).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

#[test]
fn train_and_ntk_take_a_2d_run_file() {
    let dir = fresh_dir("two-d-cli");
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, RUN).unwrap();
    let out = dir.join("run");
    let o = mspinn(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--points",
        "halton",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["dim"], 2);
    assert_eq!(r["nc"], 64);
    assert_eq!(r["engine"], "cpu");
    assert_eq!(r["rel_l2"].as_array().unwrap().len(), 2);
    assert!(r["rel_l2"][0].as_f64().unwrap().is_finite());
    for name in ["u_nn", "u_ref", "error", "coefficient"] {
        assert!(is_png(&out.join(format!("{name}.png"))), "{name}.png");
    }
    assert!(out.join("trial-001").join("weights.safetensors").exists());
    assert!(out.join("config.toml").exists());

    // The NTK of the trained network, the same fields as in 1-D.
    let w = out.join("trial-000").join("weights.safetensors");
    let o = mspinn(&[
        "ntk",
        "--config",
        cfg.to_str().unwrap(),
        "--weights",
        w.to_str().unwrap(),
        "--nc",
        "64",
        "--points",
        "midpoints",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rec = &doc["records"][0];
    for key in [
        "k_uu_fro",
        "k_uu_eig_top",
        "k_uu_trace",
        "cond_nonzero",
        "np",
    ] {
        assert!(!rec[key].is_null(), "{key} missing: {rec}");
    }
    assert_eq!(rec["nc"], 64);
    assert_eq!(rec["eps"], 0.25);

    // A fresh network over an ε sweep gives the fits; a non-square N_c for midpoints, a 1-D
    // weights file and a GPU engine are errors that say what to do.
    let o = mspinn(&[
        "ntk",
        "--config",
        cfg.to_str().unwrap(),
        "--eps",
        "1/2,1/4,1/8",
        "--nc",
        "64",
        "--points",
        "midpoints",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["records"].as_array().unwrap().len(), 3);
    assert!(doc["fits"].as_array().is_some_and(|f| !f.is_empty()));
    let o = mspinn(&[
        "ntk",
        "--config",
        cfg.to_str().unwrap(),
        "--nc",
        "60",
        "--points",
        "midpoints",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nc"));
    let o = mspinn(&[
        "ntk",
        "--config",
        cfg.to_str().unwrap(),
        "--nc",
        "64",
        "--points",
        "midpoints",
        "--engine",
        "gpu-host",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--engine cpu"));
    std::fs::remove_dir_all(&dir).ok();
}
