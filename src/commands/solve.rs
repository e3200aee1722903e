//! `mspinn solve`: the reference solution u^ε and the homogenised ū on a grid.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mspinn_problem::Problem;

use crate::args::fmt_eps;
use crate::config::ProblemConfig;
use crate::flags::EpsArg;
use crate::output::{run_dir, write_columns};
use crate::plot::{solution_chart, Series, SeriesStyle};
use crate::run::reference_on_grid;

#[derive(Args)]
pub struct SolveArgs {
    /// A problem of the paper: fp-poisson, twoscale-regression, twoscale-poisson, twoscale-darcy, ntk-4.1.
    #[arg(long, conflicts_with = "config")]
    preset: Option<String>,
    /// A TOML file describing any problem (see the README for the format).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    eps: EpsArg,
    /// Number of equispaced output points, both ends included.
    #[arg(long, default_value_t = 1000)]
    points: usize,
    /// Output folder: solution.csv (x,u,u_bar) and solution.svg/png.
    #[arg(long, default_value = "runs/solve")]
    out: PathBuf,
}

pub fn load_problem(
    preset: Option<&str>,
    config: Option<&PathBuf>,
    eps: Option<f64>,
) -> Result<(Problem, ProblemConfig)> {
    let cfg = match (preset, config) {
        (Some(p), _) => ProblemConfig::from_preset(p, eps),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            // The tables `train` reads may be there too; anything else is a typo.
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            #[allow(dead_code)]
            struct File {
                problem: ProblemConfig,
                network: Option<crate::run::spec::NetworkSpec>,
                points: Option<crate::run::spec::PointsSpec>,
                training: Option<crate::run::spec::TrainingSpec>,
            }
            let f: File = crate::config::parse_toml(&text, &path.display().to_string())?;
            f.problem
        }
        (None, None) => anyhow::bail!("give a problem: --preset NAME or --config FILE.toml"),
    };
    let problem = cfg.build(eps)?;
    Ok((problem, cfg))
}

pub fn run(a: SolveArgs) -> Result<()> {
    let (problem, _) = load_problem(a.preset.as_deref(), a.config.as_ref(), a.eps.eps)?;
    anyhow::ensure!(a.points >= 2, "--points must be at least 2");
    {
        use mspinn_model::size_plan::{available_memory, check_fits, solve_bytes};
        check_fits(
            &format!("--points {}", a.points),
            solve_bytes(a.points as u128),
            available_memory(),
            "lower --points",
        )?;
    }
    let (x, u) = reference_on_grid(&problem, a.points)?;
    let ubar = problem.homogenized_solution(&x)?;
    let dir = run_dir(&a.out)?;
    let nan = vec![f64::NAN; x.len()];
    let ub = ubar.as_deref().unwrap_or(&nan);
    write_columns(
        &dir.join("solution.csv"),
        &["x", "u", "u_bar"],
        &[&x, &u, ub],
    )?;
    let mut series = vec![Series {
        name: "u (reference)",
        x: &x,
        y: &u,
        style: SeriesStyle::Line,
    }];
    if let Some(ub) = &ubar {
        series.push(Series {
            name: "ū (homogenised)",
            x: &x,
            y: ub,
            style: SeriesStyle::Dashed,
        });
    }
    let title = match problem.eps {
        Some(e) => format!("{}: ε = {}", problem.name, fmt_eps(e)),
        None => problem.name.clone(),
    };
    solution_chart(&dir.join("solution"), &title, &series)?;
    println!(
        "wrote {} ({} points{})",
        dir.join("solution.csv").display(),
        x.len(),
        if ubar.is_some() { ", with ū" } else { "" }
    );
    Ok(())
}
