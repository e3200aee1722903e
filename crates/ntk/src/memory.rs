//! How many Jacobian rows go into one chunk of the Gram accumulation, and what happens when the
//! device runs out of memory anyway.
//!
//! On the CPU the budget is a fixed 256 MiB (beyond that a bigger chunk buys nothing: the
//! rank-r update is already compute-bound). On a CUDA device bigger chunks mean fewer, larger
//! cuBLAS products, so the budget follows the device's free memory, asked from the driver through
//! candle's `CudaDevice` (cudarc's `mem_get_info`). Free memory is a snapshot: other processes,
//! candle's own temporaries and the memory pool can take more than the estimate, so a chunk that
//! fails with an out-of-memory error is retried at half the rows instead of failing the analysis.

use candle_core::Device;

use crate::{NtkError, Result};

/// CPU chunk budget, and the `--chunk-mb` default of the CLI.
pub const CPU_CHUNK_BYTES: usize = 256 << 20;

/// Budget on a CUDA device whose free memory could not be read: 1 GiB, which any GPU candle
/// runs on has to spare once the network (a few MB) is resident. The retry still halves it.
pub const DEFAULT_DEVICE_CHUNK_BYTES: usize = 1 << 30;

/// The fraction of the free memory (after the N_p × N_p accumulators) that one chunk may plan on;
/// the rest is headroom for candle's temporaries and the allocator's rounding.
const FREE_FRACTION: f64 = 0.5;

/// Fewest rows a chunk is halved down to before an out-of-memory error is final.
pub const MIN_CHUNK_ROWS: usize = 16;

/// Free and total memory of `device` in bytes; `None` on the CPU, without the `cuda` feature,
/// or when the driver does not answer.
pub fn device_memory(device: &Device) -> Option<(usize, usize)> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(d) => d.cuda_stream().context().mem_get_info().ok(),
        Device::Cpu => None,
        _ => None,
    }
}

/// The chunk budget in bytes: `requested` when the caller fixed one, else the CPU default or a
/// share of the device's free memory left after the three f64 N_p × N_p matrices the device-side
/// accumulation holds at once (the sum, the chunk's product and the new sum).
pub fn chunk_budget(device: &Device, np: usize, requested: Option<usize>) -> Result<usize> {
    match requested {
        Some(0) => Err(NtkError::Option {
            field: "chunk_bytes",
            value: "0".into(),
            reason: "the chunk memory budget must be positive".into(),
        }),
        Some(b) => Ok(b),
        None if device.is_cpu() => Ok(CPU_CHUNK_BYTES),
        None => Ok(match device_memory(device) {
            Some((free, _)) => budget_from_free(free, np),
            None => DEFAULT_DEVICE_CHUNK_BYTES,
        }),
    }
}

/// [`FREE_FRACTION`] of what `free` bytes leave after the accumulators (never below 1 MiB: the
/// row count is clamped to [`MIN_CHUNK_ROWS`] anyway, and the retry sorts out the rest).
pub fn budget_from_free(free: usize, np: usize) -> usize {
    let accumulators = 3 * np * np * std::mem::size_of::<f64>();
    let left = free.saturating_sub(accumulators) as f64 * FREE_FRACTION;
    (left as usize).max(1 << 20)
}

/// Whether `e` is the device (or cuBLAS) running out of memory. candle passes cudarc's errors on
/// as boxed trait objects, so the only stable handle is the name the CUDA libraries give the
/// condition: CUDA_ERROR_OUT_OF_MEMORY (driver), cudaErrorMemoryAllocation (runtime),
/// CUBLAS_STATUS_ALLOC_FAILED (cuBLAS).
pub fn is_out_of_memory(e: &NtkError) -> bool {
    let text = format!("{e:?} {e}");
    [
        "OUT_OF_MEMORY",
        "out of memory",
        "cudaErrorMemoryAllocation",
        "ALLOC_FAILED",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Runs `step(start, len)` over `0..n` in chunks of at most `rows`, halving the chunk (down to
/// [`MIN_CHUNK_ROWS`]) and retrying the same start when a step fails with an out-of-memory error.
/// `step` must leave its state untouched when it fails (the accumulator commits only at the end).
/// Returns the chunk size that was in use at the end.
pub fn for_each_chunk<F>(n: usize, rows: usize, mut step: F) -> Result<usize>
where
    F: FnMut(usize, usize) -> Result<()>,
{
    let mut rows = rows.max(1);
    let mut start = 0;
    while start < n {
        let len = rows.min(n - start);
        match step(start, len) {
            Ok(()) => start += len,
            Err(e) if is_out_of_memory(&e) && len > MIN_CHUNK_ROWS => {
                rows = (len / 2).max(MIN_CHUNK_ROWS);
            }
            Err(e) if is_out_of_memory(&e) => {
                return Err(NtkError::OutOfMemory {
                    rows: len,
                    message: e.to_string(),
                })
            }
            Err(e) => return Err(e),
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oom() -> NtkError {
        NtkError::Candle(candle_core::Error::Msg(
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
        ))
    }

    #[test]
    fn oom_is_recognised_and_other_errors_are_not() {
        assert!(is_out_of_memory(&oom()));
        let cublas = NtkError::Candle(candle_core::Error::Msg(
            "cublas: CUBLAS_STATUS_ALLOC_FAILED".into(),
        ));
        assert!(is_out_of_memory(&cublas));
        let other = NtkError::Candle(candle_core::Error::Msg("shape mismatch".into()));
        assert!(!is_out_of_memory(&other));
    }

    #[test]
    fn oom_halves_the_chunk_and_every_row_is_done_once() {
        // The "device" holds at most 100 rows: chunks of 1000 must come down to 62 (1000 → 500 →
        // 250 → 125 → 62), and the rows must be covered exactly once, in order.
        let n = 1003;
        let mut done = Vec::new();
        let mut failures = 0;
        let last = for_each_chunk(n, 1000, |s, len| {
            if len > 100 {
                failures += 1;
                return Err(oom());
            }
            done.push((s, len));
            Ok(())
        })
        .unwrap();
        assert_eq!(last, 62);
        assert_eq!(failures, 4);
        let mut next = 0;
        for &(s, len) in &done {
            assert_eq!(s, next);
            assert!(len <= 62);
            next += len;
        }
        assert_eq!(next, n);
    }

    #[test]
    fn oom_at_the_smallest_chunk_is_a_clear_error_and_other_errors_pass_through() {
        let e = for_each_chunk(100, 64, |_, _| Err(oom())).unwrap_err();
        match &e {
            NtkError::OutOfMemory { rows, .. } => assert_eq!(*rows, MIN_CHUNK_ROWS),
            other => panic!("expected OutOfMemory, got {other:?}"),
        }
        assert!(e.to_string().contains("16-row"), "{e}");
        let mut calls = 0;
        let e = for_each_chunk(100, 64, |_, _| {
            calls += 1;
            Err(NtkError::Candle(candle_core::Error::Msg("boom".into())))
        })
        .unwrap_err();
        assert_eq!(calls, 1, "a non-memory error must not be retried");
        assert!(e.to_string().contains("boom"));
    }

    #[test]
    fn budget_leaves_room_for_the_accumulators() {
        let np = 5000; // three f64 5000² matrices: 600 MB
        let b = budget_from_free(10 << 30, np);
        let expected = ((10usize << 30) - 3 * np * np * 8) / 2;
        assert!(b.abs_diff(expected) <= 1, "{b} vs {expected}");
        // Less free memory than the accumulators: the floor, and the retry does the rest.
        assert_eq!(budget_from_free(100 << 20, np), 1 << 20);
        assert_eq!(
            chunk_budget(&Device::Cpu, np, None).unwrap(),
            CPU_CHUNK_BYTES
        );
        assert_eq!(chunk_budget(&Device::Cpu, np, Some(123)).unwrap(), 123);
        assert!(chunk_budget(&Device::Cpu, np, Some(0)).is_err());
        assert_eq!(device_memory(&Device::Cpu), None);
    }
}
