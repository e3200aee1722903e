//! `--device cpu|cuda|cuda:N`, with a clear error where the build or the machine has no GPU.
//!
//! Every computing command (train, ntk, freq, reproduce, gpu-check) parses its `--device` with
//! [`parse_device`] before any work, so a wrong device fails in milliseconds, not after a solve.

use anyhow::{bail, Result};
use candle_core::Device;

/// The message for `--device cuda` in a CPU-only build; tests and docs quote it.
pub const NO_CUDA_FEATURE: &str = "this binary was built without the `cuda` feature; rebuild with \
     scripts/install-cuda-toolchain.sh && cargo build --release --features cuda";

/// A device name as typed on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

/// `cpu`, `cuda` (= `cuda:0`, also `gpu`) or `cuda:N`; anything else names the accepted forms.
pub fn parse_device_spec(s: &str) -> Result<DeviceSpec> {
    let s = s.trim();
    match s {
        "cpu" => Ok(DeviceSpec::Cpu),
        "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(DeviceSpec::Cuda(n)),
            _ => bail!("--device {s:?}: expected cpu, cuda or cuda:N"),
        },
    }
}

/// Opens the device named by `s`.
pub fn parse_device(s: &str) -> Result<Device> {
    let ordinal = match parse_device_spec(s)? {
        DeviceSpec::Cpu => return Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => n,
    };
    let s = s.trim();
    if !candle_core::utils::cuda_is_available() {
        bail!("--device {s}: {NO_CUDA_FEATURE}");
    }
    match Device::new_cuda(ordinal) {
        Ok(d) => Ok(d),
        Err(e) => bail!(
            "--device {s}: no CUDA device {ordinal} found: {} \
             (`nvidia-smi` lists the GPUs and the driver; `mspinn info` what this binary sees)",
            one_line(&e.to_string())
        ),
    }
}

/// The first line of a candle error: with RUST_BACKTRACE set candle appends a backtrace of dozens
/// of lines, which buries the one line that says what is wrong (e.g. CUDA_ERROR_NO_DEVICE).
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// One line about a device: for a GPU its name, compute capability and free/total memory, as
/// the driver reports them (what `mspinn info` and `mspinn gpu-check` print).
pub fn describe(d: &Device) -> String {
    match d {
        #[cfg(feature = "cuda")]
        Device::Cuda(c) => {
            let ctx = c.cuda_stream().context().clone();
            let name = ctx
                .name()
                .unwrap_or_else(|e| format!("(name unknown: {e})"));
            let cap = ctx
                .compute_capability()
                .map_or_else(|_| "sm_?".to_string(), |(a, b)| format!("sm_{a}{b}"));
            let mem = ctx.mem_get_info().map_or_else(
                |_| "memory unknown".to_string(),
                |(free, total)| {
                    format!(
                        "{:.1} GiB free of {:.1} GiB",
                        free as f64 / (1u64 << 30) as f64,
                        total as f64 / (1u64 << 30) as f64
                    )
                },
            );
            format!("cuda:{} {name}, {cap}, {mem}", ctx.ordinal())
        }
        Device::Cpu => "cpu".into(),
        _ => device_name(d),
    }
}

pub fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_bad_ones_name_the_forms() {
        assert_eq!(parse_device_spec("cpu").unwrap(), DeviceSpec::Cpu);
        assert_eq!(parse_device_spec(" cuda ").unwrap(), DeviceSpec::Cuda(0));
        assert_eq!(parse_device_spec("cuda:3").unwrap(), DeviceSpec::Cuda(3));
        for bad in ["cuda:", "cuda:-1", "cuda:x", "tpu", ""] {
            let e = parse_device_spec(bad).unwrap_err().to_string();
            assert!(e.contains("expected cpu, cuda or cuda:N"), "{bad:?}: {e}");
        }
        assert!(parse_device("cpu").unwrap().is_cpu());
    }

    #[test]
    fn only_the_first_line_of_a_driver_error_is_kept() {
        let with_bt = "DriverError(CUDA_ERROR_NO_DEVICE, \"x\")\n   0: candle_core::error::Error::bt\n   1: main";
        assert_eq!(
            one_line(with_bt),
            "DriverError(CUDA_ERROR_NO_DEVICE, \"x\")"
        );
        assert_eq!(one_line("\n  a b \n c"), "a b");
    }

    /// Without the feature the error says how to get a CUDA build; with it (and, in CI, no GPU)
    /// it says which device was not found. Either way it is an error, not a panic.
    #[test]
    fn cuda_without_a_usable_gpu_is_a_clear_error() {
        if cfg!(feature = "cuda") && Device::new_cuda(1).is_ok() {
            return; // a machine with two GPUs: nothing to check here
        }
        let e = parse_device("cuda:1").unwrap_err().to_string();
        if cfg!(feature = "cuda") {
            assert!(e.contains("no CUDA device 1 found"), "{e}");
        } else {
            assert!(e.contains(NO_CUDA_FEATURE), "{e}");
        }
        assert!(!e.contains('\n'), "one line: {e}");
    }
}
