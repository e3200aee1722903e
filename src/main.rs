//! mspinn — physics-informed neural networks for −(a(x/ε) u')' = f, and the neural tangent
//! kernel that shows why they fail as ε → 0.
//!
//! The binary is a thin layer over the library crates: mspinn-problem (problems, reference
//! solutions), mspinn-model (network, jets, loss), mspinn-train (optimisers, trials, metrics) and
//! mspinn-ntk (Jacobians, kernels, spectra).

mod args;
mod commands;
mod config;
mod device;
mod flags;
mod interrupt;
mod output;
mod plot;
mod run;
mod sweep;

use anyhow::Result;

/// Every tensor op allocates its output; at PINN sizes those buffers (~1 MB) sit right at glibc's
/// mmap threshold, and the map/unmap/page-fault churn cost as much time as the arithmetic.
/// mimalloc keeps them in its heap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mspinn",
    version,
    about = "PINNs for elliptic equations with oscillatory coefficients, and their neural tangent kernel",
    long_about = "mspinn trains physics-informed neural networks (PINNs) for the 1-D Darcy problem \
−(a(x/ε) u')' = f with Dirichlet data, and for the Poisson and regression baselines of Carney, \
Gangal & Kim, \"Physics informed neural networks for elliptic equations with oscillatory \
differential operators\". It assembles the neural tangent kernel (NTK) of the PINN residuals and \
measures how its norm and spectrum grow like ε⁻² — the stiffness that makes the PINN fail.\n\n\
Start with:\n  mspinn solve --preset twoscale-darcy --eps 1/32 --out runs/solve   (reference solutions)\n  \
mspinn ntk --eps 1/10:1/100:10 --json                              (Fig. 2a: ‖K_uu‖_F ∝ ε⁻²)\n  \
mspinn train --preset fig4-darcy --trials 2 --schedule 2000@1e-3,lbfgs:500 --out runs/darcy",
    after_help = "Every command that computes writes a run folder (--out) with the resolved config, \
CSV/JSON data and SVG+PNG plots. `mspinn COMMAND --help` explains each option."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Version, build features and the compute devices this binary can use.
    Info,
    /// Reference solutions: the exact Darcy solution by quadrature and the homogenised ū.
    Solve(commands::solve::SolveArgs),
    /// Train PINNs (or the regression baseline) over independent trials; report the paper's metrics.
    Train(commands::train::TrainArgs),
    /// Assemble the neural tangent kernel, its blocks, norms and spectra, over ε and N_c sweeps.
    Ntk(commands::ntk::NtkArgs),
    /// The frequency principle (Fig. 1): the DFT of the error during Adam training.
    Freq(commands::freq::FreqArgs),
    /// Every figure and number of the paper's sections 2 and 4, side by side with the paper's.
    Reproduce(commands::reproduce::ReproduceArgs),
    /// Overlay the error histories of training runs (e.g. Adam + L-BFGS against Adam + LM).
    Compare(commands::compare::CompareArgs),
    /// Speed on this machine: Adam step, L-BFGS evaluation, NTK assembly, with FLOP counts and
    /// the percentage of a matmul peak measured in the same run.
    Bench(commands::bench::BenchArgs),
    /// Check a GPU against the CPU on fresh random inputs: jets, residual, loss, gradient, ‖K_uu‖_F
    /// of the 4×40 Darcy PINN (f64 to 1e-10, f32 to 1e-4); prints a PASS/FAIL table, exits 1 on FAIL.
    GpuCheck(commands::gpu_check::GpuCheckArgs),
    /// Grids of `ntk` or `train` runs as a plan of tasks: run here (`local`) or as a Slurm job
    /// array (`slurm`); reruns redo only what is missing; `merge` gathers results and plots.
    Sweep(sweep::SweepArgs),
}

/// Training runs one trial per core, and at PINN sizes (N_c ~ 10³, widths ~ 40) one thread per
/// matmul is faster than two (measured: 22 vs 28 ms per Adam step at N_c = 1024), so the matmul
/// pool gets one thread unless the user set RAYON_NUM_THREADS. The NTK's large Gram products keep
/// every core.
fn default_threads(command: &Command) {
    if std::env::var_os("RAYON_NUM_THREADS").is_none()
        && matches!(
            command,
            Command::Train(_) | Command::Freq(_) | Command::Reproduce(_)
        )
    {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

fn main() {
    let cli = Cli::parse();
    default_threads(&cli.command);
    let result: Result<()> = match cli.command {
        Command::Info => commands::info::run(),
        Command::Solve(a) => commands::solve::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::Ntk(a) => commands::ntk::run(a),
        Command::Freq(a) => commands::freq::run(a),
        Command::Reproduce(a) => commands::reproduce::run(a),
        Command::Compare(a) => commands::compare::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::GpuCheck(a) => commands::gpu_check::run(a),
        Command::Sweep(a) => sweep::run(a),
    };
    if let Err(e) = result {
        if let Some(i) = e.downcast_ref::<run::Interrupted>() {
            eprintln!("{i}");
            std::process::exit(130);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
