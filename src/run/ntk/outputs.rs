//! records.csv, ntk.json and the Fig. 2 / Fig. 3 style plots of an NTK sweep.

use anyhow::Result;
use mspinn_ntk::NtkReport;

use super::NtkDocument;
use crate::args::fmt_eps;
use crate::output::{run_dir, write_atomic, write_json};
use crate::plot::{line_chart, Axes, Series, SeriesStyle};

/// records.csv, ntk.json and the Fig. 2 / Fig. 3 style plots.
pub fn write_outputs(out: &std::path::Path, doc: &NtkDocument) -> Result<()> {
    let dir = run_dir(out)?;
    write_json(&dir.join("ntk.json"), doc)?;
    let mut csv = String::from(
        "eps,nc,np,seed,k_uu_fro,k_bb_fro,k_fro,k_uu_lambda1,k_uu_lambda2,k_uu_lambda3,k_uu_trace,k_uu_max_entry,k_uu_rank,k_uu_cond_nonzero,k_lambda1,cond_nonzero,scaling,method,dtype,seconds\n",
    );
    for r in &doc.records {
        let p = &r.report;
        let l = |v: &Vec<f64>, i: usize| v.get(i).copied().unwrap_or(f64::NAN);
        csv.push_str(&format!(
            "{:e},{},{},{},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{},{:e},{:e},{:e},{},{},{},{:.4}\n",
            p.eps.unwrap_or(f64::NAN),
            p.nc,
            p.np,
            r.seed,
            p.k_uu_fro,
            p.k_bb_fro,
            p.k_fro,
            l(&p.k_uu_eig_top, 0),
            l(&p.k_uu_eig_top, 1),
            l(&p.k_uu_eig_top, 2),
            p.k_uu_trace,
            p.k_uu_max_entry,
            p.k_uu_rank,
            p.k_uu_cond_nonzero,
            l(&p.k_eig_top, 0),
            p.cond_nonzero,
            p.scaling.name(),
            p.method.name(),
            p.dtype,
            p.seconds
        ));
    }
    write_atomic(&dir.join("records.csv"), csv.as_bytes())?;
    plot_scaling(&dir.join("ntk_scaling"), doc)?;
    plot_spectra(&dir.join("ntk_spectrum"), doc)?;
    Ok(())
}

/// Mean over seeds of a quantity, per distinct ε (sorted ascending).
fn per_eps_mean(doc: &NtkDocument, f: &dyn Fn(&NtkReport) -> f64) -> (Vec<f64>, Vec<f64>) {
    let mut eps: Vec<f64> = doc.records.iter().filter_map(|r| r.report.eps).collect();
    eps.sort_by(f64::total_cmp);
    eps.dedup();
    let ys = eps
        .iter()
        .map(|e| {
            let v: Vec<f64> = doc
                .records
                .iter()
                .filter(|r| r.report.eps == Some(*e))
                .map(|r| f(&r.report))
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        })
        .collect();
    (eps, ys)
}

/// Fig. 2 style: ‖K_uu‖_F and λ1..λ3 against ε, log–log, with an ε⁻² guide.
fn plot_scaling(stem: &std::path::Path, doc: &NtkDocument) -> Result<()> {
    let (eps, fro) = per_eps_mean(doc, &|r| r.k_uu_fro);
    if eps.len() < 2 {
        return Ok(());
    }
    let lam: Vec<(Vec<f64>, Vec<f64>)> = (0..3)
        .map(|i| {
            per_eps_mean(doc, &move |r| {
                r.k_uu_eig_top.get(i).copied().unwrap_or(f64::NAN)
            })
        })
        .collect();
    // ε⁻² through the first point of the norm.
    let guide: Vec<f64> = eps.iter().map(|e| fro[0] * (eps[0] / e).powi(2)).collect();
    let scaling = doc
        .records
        .first()
        .map_or("appendix", |r| r.report.scaling.name());
    let title = format!("NTK scaling ({scaling} convention)");
    let s = vec![
        Series {
            name: "‖K_uu‖_F",
            x: &eps,
            y: &fro,
            style: SeriesStyle::LinePoints,
        },
        Series {
            name: "λ1",
            x: &lam[0].0,
            y: &lam[0].1,
            style: SeriesStyle::LinePoints,
        },
        Series {
            name: "λ2",
            x: &lam[1].0,
            y: &lam[1].1,
            style: SeriesStyle::LinePoints,
        },
        Series {
            name: "λ3",
            x: &lam[2].0,
            y: &lam[2].1,
            style: SeriesStyle::LinePoints,
        },
        Series {
            name: "∝ ε⁻²",
            x: &eps,
            y: &guide,
            style: SeriesStyle::Dashed,
        },
    ];
    line_chart(
        stem,
        &Axes {
            title: &title,
            x_label: "ε",
            y_label: "K_uu",
            log_x: true,
            log_y: true,
        },
        &s,
    )
}

/// Fig. 3 style: each record's sorted spectrum of K, log scale (only with --full-spectrum).
fn plot_spectra(stem: &std::path::Path, doc: &NtkDocument) -> Result<()> {
    let specs: Vec<(String, Vec<f64>, Vec<f64>)> = doc
        .records
        .iter()
        .filter_map(|r| {
            let s = r.report.k_spectrum.as_ref()?;
            let x: Vec<f64> = (1..=s.len()).map(|i| i as f64).collect();
            let name = format!(
                "ε = {}, N_c = {}, seed {}",
                r.report.eps.map(fmt_eps).unwrap_or_default(),
                r.report.nc,
                r.seed
            );
            Some((name, x, s.clone()))
        })
        .take(8)
        .collect();
    if specs.is_empty() {
        return Ok(());
    }
    let s: Vec<Series> = specs
        .iter()
        .map(|(n, x, y)| Series {
            name: n,
            x,
            y,
            style: SeriesStyle::Points,
        })
        .collect();
    line_chart(
        stem,
        &Axes {
            title: "NTK spectrum (eigenvalues of K, descending)",
            x_label: "index",
            y_label: "eigenvalue",
            log_x: false,
            log_y: true,
        },
        &s,
    )
}
