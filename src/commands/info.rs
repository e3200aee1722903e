//! `mspinn info`: version, whether this binary has CUDA support, and the devices it can open.

use anyhow::Result;

use crate::device::{describe, NO_CUDA_FEATURE};

pub fn run() -> Result<()> {
    let b = crate::output::build_info();
    println!("mspinn {} ({}, {} build)", b.mspinn, b.target, b.profile);
    println!(
        "features: cuda={}",
        if b.cuda_feature { "yes" } else { "no" }
    );
    println!(
        "cpu: {} threads available",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if !candle_core::utils::cuda_is_available() {
        println!("cuda: not in this build ({NO_CUDA_FEATURE})");
        return Ok(());
    }
    let mut found = 0;
    for ordinal in 0..16 {
        match candle_core::Device::new_cuda(ordinal) {
            Ok(d) => {
                println!("{}", describe(&d));
                found += 1;
            }
            Err(e) => {
                if found == 0 {
                    let e = e.to_string();
                    let first = e.lines().next().unwrap_or("");
                    println!("cuda: built with CUDA 13.0 support, but no CUDA device was found ({first})");
                }
                break;
            }
        }
    }
    Ok(())
}
