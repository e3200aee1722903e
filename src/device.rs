//! `--device cpu|cuda|cuda:N`, with a clear error where the build or the machine has no GPU.

use anyhow::{bail, Result};
use candle_core::Device;

pub fn parse_device(s: &str) -> Result<Device> {
    let s = s.trim();
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match s {
        "cuda" | "gpu" => 0,
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => bail!("--device {s:?}: expected cpu, cuda or cuda:N"),
        },
    };
    if !candle_core::utils::cuda_is_available() {
        bail!(
            "--device {s}: this mspinn binary was built without the `cuda` feature \
             (rebuild with `scripts/install-cuda-toolchain.sh && cargo build --release --features cuda`)"
        );
    }
    match Device::new_cuda(ordinal) {
        Ok(d) => Ok(d),
        Err(e) => bail!("--device {s}: no CUDA device {ordinal} could be opened ({e})"),
    }
}

pub fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}
