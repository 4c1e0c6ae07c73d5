//! What `train --folds` and `eval --folds` print alike: each metric over the folds, with its mean
//! and spread, as a table or as JSON.

use std::io::Write;

use serde_json::json;

/// One metric's value per fold (`None` where a fold has none).
pub struct FoldMetric {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

impl FoldMetric {
    /// The mean and the population standard deviation `sqrt((1/K) sum (x - mean)^2)`, as
    /// Surprise's `cross_validate` reports them; `None` when a fold has no value.
    pub fn mean_std(&self) -> Option<(f64, f64)> {
        let values: Vec<f64> = self.values.iter().copied().collect::<Option<_>>()?;
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        Some((mean, std))
    }
}

/// `{name: {mean, std, folds}}` for every metric.
pub fn metrics_json(metrics: &[FoldMetric]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = metrics
        .iter()
        .map(|m| {
            let stats = m.mean_std();
            let value = json!({
                "mean": stats.map(|s| s.0),
                "std": stats.map(|s| s.1),
                "folds": m.values,
            });
            (m.name.clone(), value)
        })
        .collect();
    map.into()
}

/// A row per metric: each fold's value, then the mean and std.
pub fn write_table(out: &mut impl Write, metrics: &[FoldMetric]) -> std::io::Result<()> {
    let folds = metrics.first().map_or(0, |m| m.values.len());
    let mut head = format!("{:<11}", "");
    for index in 0..folds {
        head.push_str(&format!(" {:>9}", format!("fold {}", index + 1)));
    }
    head.push_str(&format!(" {:>9} {:>9}", "mean", "std"));
    writeln!(out, "{head}")?;
    let cell = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    for metric in metrics {
        let mut line = format!("{:<11}", metric.name);
        for &value in &metric.values {
            line.push_str(&format!(" {:>9}", cell(value)));
        }
        let stats = metric.mean_std();
        line.push_str(&format!(
            " {:>9} {:>9}",
            cell(stats.map(|s| s.0)),
            cell(stats.map(|s| s.1))
        ));
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_spread_by_hand() {
        let metric = FoldMetric {
            name: "mse".into(),
            values: vec![Some(1.0), Some(3.0)],
        };
        assert_eq!(metric.mean_std(), Some((2.0, 1.0)));
        let missing = FoldMetric {
            name: "ndcg@10".into(),
            values: vec![Some(1.0), None],
        };
        assert_eq!(missing.mean_std(), None);
    }
}
