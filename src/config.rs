//! The run configuration files: what `--config FILE.toml` reads and what every run folder records
//! as `config.toml` (resolved: presets expanded into numbers, defaults filled in). The
//! `[problem]` table and how it becomes a problem ([`ProblemConfig`]) live in mspinn-problem,
//! shared with the Python package; this module reads the files.

use anyhow::Result;
use serde::de::DeserializeOwned;

pub use mspinn_problem::{NumberOrString, ProblemConfig};

/// Parses a TOML file's text; an unknown table or key (every config table denies them) is an
/// error naming the nearest valid name: "unknown field `trainig` … did you mean `training`?".
pub fn parse_toml<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let msg = e.to_string();
        match nearest_field(&msg) {
            Some((bad, near)) => anyhow::anyhow!("{what}: {msg}did you mean `{near}` for `{bad}`?"),
            None => anyhow::anyhow!("{what}: {msg}"),
        }
    })
}

/// From serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`"), the unknown
/// name and the valid one nearest to it in edit distance.
pub fn nearest_field(msg: &str) -> Option<(String, String)> {
    let rest = &msg[msg.find("unknown field `")? + "unknown field `".len()..];
    let end = rest.find('`')?;
    let bad = &rest[..end];
    let after = &rest[end + 1..];
    let line = after.lines().next().unwrap_or("");
    let expected = &line[line.find("expected")?..];
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    names
        .into_iter()
        .min_by_key(|n| edit_distance(bad, n))
        .map(|n| (bad.to_string(), n.to_string()))
}

/// Levenshtein distance between two strings (by chars).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("trainig", "training"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("widht", "width"), 2);
    }

    #[test]
    fn the_nearest_field_is_suggested() {
        let m =
            "unknown field `trainig`, expected one of `problem`, `network`, `points`, `training`\n";
        assert_eq!(
            nearest_field(m),
            Some(("trainig".into(), "training".into()))
        );
        assert_eq!(nearest_field("missing field `x`"), None);
    }
}
