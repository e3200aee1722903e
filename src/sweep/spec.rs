//! The sweep spec: a TOML file naming a command, its base options, a grid of values whose
//! cartesian product makes the tasks, and optional shard settings.
//!
//! ```toml
//! command = "ntk"
//! [base]
//! widths = "50"
//! points = "midpoints"
//! [grid]
//! eps = ["1/16", "1/32"]
//! nc = [256, 1024]
//! seed = [0, 1]
//! [shard]          # ntk only: each point's N_c rows split into shards of this many rows
//! rows = 65536
//! ```
//!
//! Options are the command's own long flags (`top-k` or `top_k`); a boolean flag takes `true` or
//! `false`. Every key is checked against the command's clap definition before anything runs, and
//! each task is resolved by the command's own parser, so defaults and validation are exactly the
//! command's.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser};
use serde::{Deserialize, Serialize};

use crate::commands::ntk::NtkArgs;
use crate::commands::train::TrainArgs;

/// The command a sweep runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepCommand {
    Ntk,
    Train,
}

impl SweepCommand {
    pub fn name(self) -> &'static str {
        match self {
            SweepCommand::Ntk => "ntk",
            SweepCommand::Train => "train",
        }
    }

    /// Options the sweep sets itself (the task folder, output format, progress).
    fn managed(self) -> &'static [&'static str] {
        match self {
            SweepCommand::Ntk => &["out", "json", "quiet", "help"],
            SweepCommand::Train => &["out", "resume", "quiet", "help"],
        }
    }

    /// The command's long flags: name → whether it takes a value.
    fn flags(self) -> BTreeMap<String, bool> {
        let cmd = match self {
            SweepCommand::Ntk => NtkCli::command(),
            SweepCommand::Train => TrainCli::command(),
        };
        cmd.get_arguments()
            .filter_map(|a| Some((a.get_long()?.to_string(), a.get_action().takes_values())))
            .collect()
    }
}

/// `mspinn ntk`'s flags on their own, to parse one task's argument list.
#[derive(Parser)]
#[command(name = "ntk")]
pub struct NtkCli {
    #[command(flatten)]
    pub args: NtkArgs,
}

/// `mspinn train`'s flags on their own.
#[derive(Parser)]
#[command(name = "train")]
pub struct TrainCli {
    #[command(flatten)]
    pub args: TrainArgs,
}

/// A grid or base value as the spec gives it: a string, number or boolean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    fn from_toml(key: &str, v: &toml::Value) -> Result<Scalar> {
        Ok(match v {
            toml::Value::String(s) => Scalar::Str(s.clone()),
            toml::Value::Integer(i) => Scalar::Int(*i),
            toml::Value::Float(f) => Scalar::Float(*f),
            toml::Value::Boolean(b) => Scalar::Bool(*b),
            other => bail!(
                "{key}: expected a string, number or boolean, found {}",
                other.type_str()
            ),
        })
    }

    /// The value as a command-line argument (booleans are handled by the caller).
    pub fn arg(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Str(s) => s.clone(),
        }
    }
}

/// A parsed, validated sweep spec.
#[derive(Clone, Debug)]
pub struct SweepSpec {
    pub command: SweepCommand,
    /// Option name (the long flag) → value, sorted by name.
    pub base: BTreeMap<String, Scalar>,
    /// Option name → its values, sorted by name; the tasks are the product in this order (the
    /// last key varies fastest).
    pub grid: Vec<(String, Vec<Scalar>)>,
    /// Rows per shard (ntk only).
    pub shard_rows: Option<usize>,
}

fn table<'a>(v: &'a toml::Value, key: &str) -> Result<&'a toml::Table> {
    v.as_table()
        .with_context(|| format!("{key}: expected a table, found {}", v.type_str()))
}

/// `top_k` and `top-k` both name `--top-k`.
fn flag_name(key: &str) -> String {
    key.replace('_', "-")
}

impl SweepSpec {
    pub fn parse(text: &str) -> Result<SweepSpec> {
        let doc: toml::Table = toml::from_str(text).context("the sweep spec is not valid TOML")?;
        for key in doc.keys() {
            if !["command", "base", "grid", "shard"].contains(&key.as_str()) {
                bail!("unknown key `{key}` (a sweep spec has command, [base], [grid], [shard])");
            }
        }
        let command = match doc.get("command") {
            None => bail!("command: missing (command = \"ntk\" or \"train\")"),
            Some(toml::Value::String(s)) if s == "ntk" => SweepCommand::Ntk,
            Some(toml::Value::String(s)) if s == "train" => SweepCommand::Train,
            Some(toml::Value::String(s)) => {
                bail!("command: unknown command {s:?} (expected \"ntk\" or \"train\")")
            }
            Some(v) => bail!("command: expected a string, found {}", v.type_str()),
        };
        let flags = command.flags();
        let check = |section: &str, key: &str, v: &Scalar| -> Result<String> {
            let name = flag_name(key);
            let full = format!("{section}.{key}");
            if command.managed().contains(&name.as_str()) {
                bail!("{full}: --{name} is set by the sweep itself, not by the spec");
            }
            let Some(&takes_value) = flags.get(&name) else {
                bail!("{full}: `mspinn {}` has no option --{name}", command.name());
            };
            match (takes_value, v) {
                (false, Scalar::Bool(_)) | (true, Scalar::Str(_) | Scalar::Int(_)) => {}
                (true, Scalar::Float(_)) => {}
                (false, _) => bail!("{full}: --{name} is a switch; give true or false"),
                (true, Scalar::Bool(_)) => {
                    bail!("{full}: --{name} takes a value, not a boolean")
                }
            }
            Ok(name)
        };
        let mut base = BTreeMap::new();
        if let Some(b) = doc.get("base") {
            for (k, v) in table(b, "base")? {
                let s = Scalar::from_toml(&format!("base.{k}"), v)?;
                let name = check("base", k, &s)?;
                if base.insert(name.clone(), s).is_some() {
                    bail!("base.{k}: --{name} is given twice");
                }
            }
        }
        let mut grid: Vec<(String, Vec<Scalar>)> = Vec::new();
        if let Some(g) = doc.get("grid") {
            for (k, v) in table(g, "grid")? {
                let full = format!("grid.{k}");
                let list = v.as_array().with_context(|| {
                    format!("{full}: expected a list of values, found {}", v.type_str())
                })?;
                if list.is_empty() {
                    bail!("{full}: the list of values is empty");
                }
                let mut vals = Vec::new();
                let mut name = flag_name(k);
                for (i, item) in list.iter().enumerate() {
                    let s = Scalar::from_toml(&format!("{full}[{i}]"), item)?;
                    name = check("grid", k, &s)?;
                    vals.push(s);
                }
                if base.contains_key(&name) {
                    bail!("{full}: --{name} is in both [base] and [grid]");
                }
                if grid.iter().any(|(n, _)| *n == name) {
                    bail!("{full}: --{name} is given twice");
                }
                grid.push((name, vals));
            }
        }
        grid.sort_by(|a, b| a.0.cmp(&b.0));
        let mut shard_rows = None;
        if let Some(s) = doc.get("shard") {
            for (k, v) in table(s, "shard")? {
                match (k.as_str(), v) {
                    ("rows", toml::Value::Integer(r)) if *r >= 1 => shard_rows = Some(*r as usize),
                    ("rows", v) => bail!("shard.rows: expected a positive integer, found {v}"),
                    _ => bail!("shard.{k}: unknown key (a [shard] table has rows)"),
                }
            }
            if command != SweepCommand::Ntk {
                bail!("shard: sharding splits an NTK's collocation rows; command must be \"ntk\"");
            }
            if shard_rows.is_none() {
                bail!("shard.rows: missing (rows of each shard)");
            }
        }
        Ok(SweepSpec {
            command,
            base,
            grid,
            shard_rows,
        })
    }

    /// Every grid point: the grid values of each task, in plan order (the last key fastest).
    pub fn points(&self) -> Vec<Vec<(String, Scalar)>> {
        let mut out: Vec<Vec<(String, Scalar)>> = vec![Vec::new()];
        for (name, vals) in &self.grid {
            out = out
                .into_iter()
                .flat_map(|prefix| {
                    vals.iter().map(move |v| {
                        let mut p = prefix.clone();
                        p.push((name.clone(), v.clone()));
                        p
                    })
                })
                .collect();
        }
        out
    }

    /// The argument list of the command for one grid point (base options, then grid values).
    pub fn args(&self, point: &[(String, Scalar)]) -> Vec<String> {
        let mut args = Vec::new();
        let all = self.base.iter().chain(point.iter().map(|(k, v)| (k, v)));
        for (name, v) in all {
            match v {
                Scalar::Bool(true) => args.push(format!("--{name}")),
                Scalar::Bool(false) => {}
                v => {
                    args.push(format!("--{name}"));
                    args.push(v.arg());
                }
            }
        }
        args
    }
}

/// Parses a task's argument list with `mspinn ntk`'s own parser.
pub fn parse_ntk(args: &[String]) -> Result<NtkArgs> {
    let argv = std::iter::once("ntk".to_string()).chain(args.iter().cloned());
    NtkCli::try_parse_from(argv)
        .map(|c| c.args)
        .map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim_end()))
}

/// Parses a task's argument list with `mspinn train`'s own parser.
pub fn parse_train(args: &[String]) -> Result<TrainArgs> {
    let argv = std::iter::once("train".to_string()).chain(args.iter().cloned());
    TrainCli::try_parse_from(argv)
        .map(|c| c.args)
        .map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim_end()))
}
