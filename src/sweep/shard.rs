//! Sharded NTK: one point's N_c collocation rows split over tasks. Each shard writes its partial
//! Gram G_c = J_cᵀJ_c (N_p × N_p, f64, gram_u.npy) and max_i ‖J_i‖² of its rows; the first shard
//! also writes the boundary block (gram_b.npy = J_bᵀJ_b, jjt_b.npy = J_bJ_bᵀ). `merge` sums the
//! shards in their fixed order and computes every number exactly as `analyse` does with the Gram
//! method: ‖K_uu‖_F = w_u‖G_u‖_F, the spectra of w_u G_u and w_u G_u + w_b G_b, and so on.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use faer::Mat;
use mspinn_ntk::analysis::{chunk_rows, unit_roundoff};
use mspinn_ntk::gram::boundary_grams;
use mspinn_ntk::memory::{chunk_budget, for_each_chunk};
use mspinn_ntk::{GramAccumulator, Method, NtkReport, ParamGram, Scaling};
use serde::{Deserialize, Serialize};

use super::plan::{single_point, Shard};
use crate::args::parse_dtype;
use crate::output::{write_json, write_npy};
use crate::run::ntk::{prepare_rows, NtkRecord, NtkRequest};

/// shard.json: what a shard measured besides its Gram matrices.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardInfo {
    pub eps: f64,
    pub nc: usize,
    pub nb: usize,
    pub np: usize,
    pub seed: u64,
    pub part: usize,
    pub parts: usize,
    pub start: usize,
    pub end: usize,
    pub max_row_sq_u: f64,
    pub w_u: f64,
    pub w_b: f64,
    pub scaling: Scaling,
    pub top_k: usize,
    pub full_spectrum: bool,
    pub dtype: String,
    pub engine: String,
    pub seconds: f64,
}

fn to_rows(m: &Mat<f64>) -> Vec<f64> {
    let (r, c) = (m.nrows(), m.ncols());
    (0..r * c).map(|i| m[(i / c, i % c)]).collect()
}

/// Accumulates the shard's rows into `out`.
pub fn run_shard(req: &NtkRequest, shard: &Shard, out: &Path) -> Result<()> {
    let (eps, nc) = single_point(req)?;
    ensure!(
        nc == shard.nc && shard.start <= shard.end && shard.end <= nc,
        "shard rows {}..{} do not fit N_c = {nc} (the plan was made for N_c = {})",
        shard.start,
        shard.end,
        shard.nc
    );
    let t = Instant::now();
    // Only this shard's points: row k of `set` is row shard.start + k of the whole point set.
    let (mlp, set) = prepare_rows(req, eps, nc, req.seed, shard.start..shard.end)?;
    let mut ev = mspinn_model::evaluator::build(&req.engine, &mlp)?;
    let np = mlp.num_params();
    let (len, nb) = (set.n_pde, set.n_bc);
    let rows = chunk_rows(
        &mlp,
        chunk_budget(mlp.device(), np, req.options.chunk_bytes)?,
    );
    let mut acc = GramAccumulator::new(np);
    for_each_chunk(len, rows, |s, n| {
        acc.add(&ev.jacobian(&mlp, &set, s..s + n)?)
    })?;
    let (g_u, max_row_sq_u) = acc.finish()?;
    write_npy(&out.join("gram_u.npy"), np, np, &to_rows(&g_u))?;
    if shard.part == 0 && nb > 0 {
        let (g_b, jjt_b) = boundary_grams(&ev.jacobian(&mlp, &set, len..len + nb)?)?;
        write_npy(&out.join("gram_b.npy"), np, np, &to_rows(&g_b))?;
        write_npy(&out.join("jjt_b.npy"), nb, nb, &to_rows(&jjt_b))?;
    }
    // The loss weights of the whole set (ResidualSet::new: 1/N_c per PDE row, λ/N_b per
    // boundary row), under the request's convention.
    let loss_w = [1.0 / nc as f64, if nb > 0 { set.host_w[len] } else { 0.0 }];
    let w = req.options.scaling.weights(&loss_w);
    let info = ShardInfo {
        eps,
        nc,
        nb,
        np,
        seed: req.seed,
        part: shard.part,
        parts: shard.parts,
        start: shard.start,
        end: shard.end,
        max_row_sq_u,
        w_u: w[0],
        w_b: if nb > 0 { w[1] } else { 0.0 },
        scaling: req.options.scaling,
        top_k: req.options.top_k,
        full_spectrum: req.options.full_spectrum,
        dtype: format!("{:?}", mlp.dtype()).to_lowercase(),
        engine: ev.engine().name().into(),
        seconds: t.elapsed().as_secs_f64(),
    };
    write_json(&out.join("shard.json"), &info)
}

/// Reads a row-major f64 .npy (format 1.x/2.x, little-endian) as a faer matrix.
pub fn read_npy(path: &Path) -> Result<Mat<f64>> {
    let b = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bad = || format!("{}: not an f64 .npy file", path.display());
    ensure!(b.len() >= 10 && b.starts_with(b"\x93NUMPY"), "{}", bad());
    let (hlen, hstart) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        _ => {
            ensure!(b.len() >= 12, "{}", bad());
            (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
        }
    };
    ensure!(b.len() >= hstart + hlen, "{}", bad());
    let header = std::str::from_utf8(&b[hstart..hstart + hlen]).with_context(bad)?;
    ensure!(
        header.contains("'<f8'") && header.contains("'fortran_order': False"),
        "{}",
        bad()
    );
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .with_context(bad)?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .with_context(bad)?;
    ensure!(dims.len() == 2, "{}: expected a matrix", path.display());
    let (r, c) = (dims[0], dims[1]);
    let data = &b[hstart + hlen..];
    ensure!(data.len() == 8 * r * c, "{}: truncated", path.display());
    Ok(Mat::from_fn(r, c, |i, j| {
        let k = 8 * (i * c + j);
        f64::from_le_bytes(data[k..k + 8].try_into().expect("8 bytes"))
    }))
}

fn read_info(dir: &Path) -> Result<ShardInfo> {
    let p = dir.join("shard.json");
    let s = std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_str(&s).with_context(|| format!("{}", p.display()))
}

/// Sums the shards of one point (their task folders, in part order) and measures the NTK as
/// `analyse` does with the Gram method.
pub fn merge_shards(dirs: &[&Path]) -> Result<NtkRecord> {
    let start = Instant::now();
    let infos: Vec<ShardInfo> = dirs.iter().map(|d| read_info(d)).collect::<Result<_>>()?;
    let Some(first) = infos.first() else {
        bail!("no shards to merge")
    };
    let (np, nc, nb) = (first.np, first.nc, first.nb);
    let mut next = 0;
    for (k, s) in infos.iter().enumerate() {
        ensure!(
            s.part == k && s.parts == infos.len() && s.start == next,
            "shard {k} of {}: rows {}..{} do not continue the previous shards (at {next})",
            infos.len(),
            s.start,
            s.end
        );
        ensure!(
            s.np == np && s.nc == nc && s.eps == first.eps && s.seed == first.seed,
            "shard {k} is of another network or point set than shard 0"
        );
        next = s.end;
    }
    ensure!(next == nc, "the shards cover rows 0..{next} of N_c = {nc}");
    let mut g_u = Mat::<f64>::zeros(np, np);
    for d in dirs {
        let g = read_npy(&d.join("gram_u.npy"))?;
        ensure!(g.nrows() == np && g.ncols() == np, "{}: shape", d.display());
        g_u += &g;
    }
    let (g_b, jjt_b) = if nb > 0 {
        (
            read_npy(&dirs[0].join("gram_b.npy"))?,
            read_npy(&dirs[0].join("jjt_b.npy"))?,
        )
    } else {
        (Mat::zeros(np, np), Mat::zeros(0, 0))
    };
    let g = ParamGram {
        g_u,
        g_b,
        jjt_b,
        w_u: first.w_u,
        w_b: first.w_b,
        n_pde: nc,
        n_bc: nb,
        max_row_sq_u: infos.iter().map(|s| s.max_row_sq_u).fold(0.0, f64::max),
    };
    let u = unit_roundoff(parse_dtype(&first.dtype)?);
    let order = (nc + nb).max(np);
    let ks = g.k_uu_spectrum(u)?.rethreshold(order, u);
    let kk = g.k_spectrum(u)?.rethreshold(order, u);
    let seconds = infos.iter().map(|s| s.seconds).sum::<f64>() + start.elapsed().as_secs_f64();
    let report = NtkReport {
        eps: Some(first.eps),
        nc,
        nb,
        np,
        k_uu_fro: g.k_uu_fro(),
        k_bb_fro: g.k_bb_fro(),
        k_fro: g.k_fro(),
        k_uu_eig_top: ks.top(first.top_k),
        k_uu_trace: g.k_uu_trace(),
        k_uu_max_entry: g.k_uu_max_entry(),
        k_uu_rank: ks.rank(),
        k_uu_cond_nonzero: ks.cond_nonzero(),
        k_eig_top: kk.top(first.top_k),
        cond_nonzero: kk.cond_nonzero(),
        scaling: first.scaling,
        method: Method::Gram,
        dtype: first.dtype.clone(),
        engine: first.engine.clone(),
        seconds,
        k_uu_spectrum: first.full_spectrum.then(|| ks.eigenvalues.clone()),
        k_spectrum: first.full_spectrum.then(|| kk.eigenvalues.clone()),
    };
    Ok(NtkRecord {
        seed: first.seed,
        report,
        train_final_loss: None,
    })
}
