//! Networks that know themselves, end to end: `ntk --checkpoint/--weights` read the activation and
//! widths from the weights file instead of assuming tanh, and a damaged file says what is wrong
//! with it; `compare` survives a trial whose history is empty.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::mspinn;

fn tmp(name: &str) -> PathBuf {
    common::fresh_dir(&format!("wcli-{name}"))
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A one-trial run whose weights are (to 1e-30) the initial ones.
fn tiny_run(dir: &Path, activation: &str) {
    ok(&mspinn(&[
        "train",
        "--preset",
        "fig4-darcy",
        "--activation",
        activation,
        "--widths",
        "10",
        "--nc",
        "16",
        "--trials",
        "1",
        "--schedule",
        "1@1e-30",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]));
}

/// ‖K_uu‖_F of the first record of an `ntk --json` run.
fn k_uu_fro(stdout: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(stdout).unwrap();
    v["records"][0]["k_uu_fro"].as_f64().unwrap()
}

const NTK: [&str; 14] = [
    "ntk",
    "--coef",
    "paper-4.2",
    "--eps",
    "1/32",
    "--lambda",
    "2",
    "--nc",
    "16",
    "--init",
    "glorot-normal",
    "--seed",
    "0",
    "--json",
];

#[test]
fn ntk_of_a_checkpoint_uses_the_networks_own_activation() {
    let dir = tmp("sin");
    tiny_run(&dir, "sin");
    let d = dir.to_str().unwrap();
    let from_ckpt = k_uu_fro(&ok(&mspinn(&[&NTK[..], &["--checkpoint", d]].concat())));
    // The same weights read as a tanh network (what ntk assumed before): a different kernel.
    let tanh_fresh = k_uu_fro(&ok(&mspinn(&[&NTK[..], &["--widths", "10"]].concat())));
    assert!(
        (from_ckpt - tanh_fresh).abs() > 1e-3 * tanh_fresh,
        "the checkpoint's NTK {from_ckpt:e} equals the tanh network's {tanh_fresh:e}"
    );
    // And a tanh run's checkpoint gives the tanh network's kernel (weights = init to 1e-30).
    let tdir = tmp("tanh");
    tiny_run(&tdir, "tanh");
    let from_tanh = k_uu_fro(&ok(&mspinn(
        &[&NTK[..], &["--checkpoint", tdir.to_str().unwrap()]].concat(),
    )));
    assert!(
        (from_tanh - tanh_fresh).abs() <= 1e-9 * tanh_fresh,
        "{from_tanh:e} vs {tanh_fresh:e}"
    );
}

#[test]
fn damaged_weights_files_say_what_is_wrong() {
    let dir = tmp("damaged");
    tiny_run(&dir, "tanh");
    let good = std::fs::read(dir.join("trial-000").join("weights.safetensors")).unwrap();
    let run = |bytes: &[u8], name: &str| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let o = mspinn(&[&NTK[..], &["--weights", p.to_str().unwrap()]].concat());
        assert!(!o.status.success(), "{name} was accepted");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = run(&good[..good.len() / 2], "truncated.safetensors");
    assert!(
        e.contains("truncated") && !e.contains("does not exist"),
        "{e}"
    );
    // One NaN weight: the first 8 bytes of the data section.
    let header = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut nan = good.clone();
    nan[8 + header..16 + header].copy_from_slice(&f64::NAN.to_le_bytes());
    let e = run(&nan, "nan.safetensors");
    assert!(e.contains("NaN") && !e.contains("eigen"), "{e}");
}

#[test]
fn compare_skips_a_trial_with_an_empty_history() {
    let dir = tmp("emptyhist");
    ok(&mspinn(&[
        "train",
        "--preset",
        "fig4-darcy",
        "--widths",
        "8",
        "--nc",
        "16",
        "--trials",
        "2",
        "--schedule",
        "20@1e-3",
        "--log-every",
        "5",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]));
    std::fs::write(dir.join("trial-001").join("history.csv"), "").unwrap();
    let out = tmp("emptyhist-cmp");
    ok(&mspinn(&[
        "compare",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
}
