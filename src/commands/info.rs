//! `mspinn info`.

use anyhow::Result;

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
    if candle_core::utils::cuda_is_available() {
        let mut found = 0;
        for ordinal in 0..16 {
            match candle_core::Device::new_cuda(ordinal) {
                Ok(_) => {
                    println!("cuda:{ordinal}: available");
                    found += 1;
                }
                Err(_) => break,
            }
        }
        if found == 0 {
            println!("cuda: built with CUDA, but no CUDA device was found");
        }
    } else {
        println!("cuda: not in this build (rebuild with --features cuda)");
    }
    Ok(())
}
