//! `mspinn sweep`: a grid of `ntk` or `train` runs as a plan of tasks (one JSON line each), run
//! in-process on this machine (`local`) or as a Slurm job array (`slurm`), each task writing its
//! folder atomically so reruns redo only what is missing; `merge` gathers the results.
//!
//! - [`spec`]: the TOML spec and its validation against the command's own flags;
//! - [`plan`]: tasks, plan.jsonl;
//! - [`run`]: one task (`run`), all pending ones (`local`);
//! - [`shard`]: a huge NTK split over collocation rows into partial Grams that sum exactly;
//! - [`merge`] and [`plots`]: `status`, results.csv, plots, report.md;
//! - [`slurm`]: the sbatch script and its submission.

pub mod merge;
pub mod plan;
pub mod plots;
pub mod run;
pub mod shard;
pub mod slurm;
pub mod spec;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub command: SweepCommandArgs,
}

#[derive(Subcommand)]
pub enum SweepCommandArgs {
    /// Resolve a spec (TOML: command, [base], [grid], [shard]) into DIR/plan.jsonl (one task per
    /// line) and DIR/spec.toml. Every task is checked with its command's own parser.
    Plan {
        /// The sweep spec (TOML); see docs/sweeps.md.
        spec: PathBuf,
        /// The plan folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run one task of the plan in DIR, in this process (what each Slurm array task runs). A done
    /// task is not run again.
    Run {
        /// The plan folder.
        dir: PathBuf,
        /// The task index [default: $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX].
        #[arg(long)]
        task: Option<usize>,
    },
    /// Run every task of the plan in DIR that is not done, on this machine, N at a time.
    Local {
        /// The plan folder.
        dir: PathBuf,
        /// Tasks at once (threads of this process).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// Done, running, failed (first line of each error) and pending tasks.
    Status {
        /// The plan folder.
        dir: PathBuf,
    },
    /// Gather the done tasks into DIR/results.csv, plots and DIR/report.md (sharded NTKs are
    /// summed and measured here).
    Merge {
        /// The plan folder.
        dir: PathBuf,
    },
    /// Write DIR/sbatch.sh, a Slurm job array over the pending tasks, and submit it with sbatch.
    #[command(
        long_about = "Write DIR/sbatch.sh, a Slurm job array over the pending tasks (one array \
task per task, `#SBATCH --array=<pending>%K`), each running `<this binary> sweep run DIR`, and \
submit it with `sbatch`, printing the job id.\n\nThe binary (its absolute path is written into the \
script) and the plan folder DIR must be on a filesystem every node sees (a shared home, NFS, \
Lustre): the array tasks run on the compute nodes and write their results into DIR/tasks. Follow \
with `mspinn sweep status DIR` and, when all are done, `mspinn sweep merge DIR`."
    )]
    Slurm {
        /// The plan folder (on a filesystem every node sees).
        dir: PathBuf,
        /// Write the script, do not submit it.
        #[arg(long)]
        dry_run: bool,
        /// Slurm partition.
        #[arg(long)]
        partition: Option<String>,
        /// Time limit of each array task (Slurm's forms: MM, HH:MM:SS, D-HH).
        #[arg(long)]
        time: Option<String>,
        /// CPUs of each array task.
        #[arg(long)]
        cpus_per_task: Option<u32>,
        /// At most K array tasks at once (`--array=…%K`).
        #[arg(long)]
        max_parallel: Option<u32>,
        /// One GPU per array task (`--gres=gpu:1`); implied when the tasks run on --device cuda.
        #[arg(long)]
        gpu: bool,
    },
}

/// A `train` sweep trains with one matmul thread per trial, as `mspinn train` does (see main).
fn train_threads(dir: &std::path::Path) {
    let is_train = plan::read_plan(dir)
        .ok()
        .and_then(|t| t.first().map(|t| t.command == spec::SweepCommand::Train))
        .unwrap_or(false);
    if is_train && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

pub fn run(a: SweepArgs) -> Result<()> {
    match a.command {
        SweepCommandArgs::Plan { spec, out } => {
            let tasks = plan::write_plan(&spec, &out)?;
            println!(
                "planned {} tasks into {}/plan.jsonl",
                tasks.len(),
                out.display()
            );
            Ok(())
        }
        SweepCommandArgs::Run { dir, task } => {
            train_threads(&dir);
            run::run_one(&dir, task)
        }
        SweepCommandArgs::Local { dir, jobs } => {
            train_threads(&dir);
            run::run_local(&dir, jobs)
        }
        SweepCommandArgs::Status { dir } => merge::status(&dir),
        SweepCommandArgs::Merge { dir } => merge::merge(&dir),
        SweepCommandArgs::Slurm {
            dir,
            dry_run,
            partition,
            time,
            cpus_per_task,
            max_parallel,
            gpu,
        } => slurm::slurm(
            &dir,
            &slurm::SlurmOptions {
                partition,
                time,
                cpus_per_task,
                max_parallel,
                gpu,
                dry_run,
            },
        ),
    }
}
