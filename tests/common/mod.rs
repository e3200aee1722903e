//! Helpers every end-to-end test of the binary shares (each test file is its own crate, so a
//! helper a file does not use is not dead code).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the built `mspinn` binary with `args` and waits for it.
pub fn mspinn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mspinn"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// An empty folder of this test process under the temp dir, `mspinn-<name>-<pid>`.
pub fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mspinn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("a writable temp dir");
    d
}
