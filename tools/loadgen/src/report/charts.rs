//! The PNG charts of `docs/benchmarks.md`: latency vs subscribers, memory
//! vs connections, throughput vs writers, and the fan-out ramp.

use super::Report;
use crate::chart::{LineChart, Series, series_color};
use std::path::Path;

impl Report<'_> {
    pub(super) fn chart_latency(&self, dir: &Path) -> anyhow::Result<bool> {
        let cases = self.cases("fanout");
        if cases.is_empty() {
            return Ok(false);
        }
        let mut series = Vec::new();
        for (i, t) in self.targets.iter().enumerate() {
            for (metric, dashed) in [("p50_ms", false), ("p99_ms", true)] {
                let pts: Vec<(f64, f64)> = cases
                    .iter()
                    .enumerate()
                    .filter_map(|(x, c)| {
                        self.get("fanout", c, t, metric).map(|a| (x as f64, a.med))
                    })
                    .collect();
                if !pts.is_empty() {
                    series.push(Series {
                        label: format!("{t} {}", &metric[..3]),
                        color: series_color(i),
                        dashed,
                        points: pts,
                    });
                }
            }
        }
        let ch = LineChart {
            title: "WRITE -> DELIVERY LATENCY".into(),
            x_label: format!(
                "SUBSCRIBERS ({} WRITES/S)",
                self.res
                    .params
                    .get("fanout")
                    .and_then(|p| p.split(" writers, ").nth(1))
                    .and_then(|p| p.split(' ').next())
                    .unwrap_or("?")
            ),
            y_label: "MS (LOG)".into(),
            categories: Some(
                cases
                    .iter()
                    .map(|c| c.trim_start_matches("S=").to_string())
                    .collect(),
            ),
            log_y: true,
            series,
        };
        std::fs::write(dir.join("latency-vs-subscribers.png"), ch.png(800, 440))?;
        Ok(true)
    }

    pub(super) fn chart_memory(&self, dir: &Path) -> anyhow::Result<bool> {
        let cases = self.cases("connections");
        let Some(case) = cases.first() else {
            return Ok(false);
        };
        let mut series = Vec::new();
        for (i, t) in self.targets.iter().enumerate() {
            let Some(m) = self
                .agg
                .get(&("connections".into(), case.clone(), t.clone()))
            else {
                continue;
            };
            let mut pts: Vec<(f64, f64)> = m
                .iter()
                .filter_map(|(k, a)| {
                    let n: f64 = k
                        .strip_prefix("rss_at_")?
                        .strip_suffix("_mb")?
                        .parse()
                        .ok()?;
                    Some((n, a.med))
                })
                .collect();
            pts.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            if !pts.is_empty() {
                series.push(Series {
                    label: t.clone(),
                    color: series_color(i),
                    dashed: false,
                    points: pts,
                });
            }
        }
        if series.is_empty() {
            return Ok(false);
        }
        let ch = LineChart {
            title: "SERVER RSS VS IDLE CONNECTIONS (ONE LIVE QUERY EACH)".into(),
            x_label: "CONNECTIONS".into(),
            y_label: "RSS MB".into(),
            categories: None,
            log_y: false,
            series,
        };
        std::fs::write(dir.join("memory-vs-connections.png"), ch.png(800, 440))?;
        Ok(true)
    }

    pub(super) fn chart_throughput(&self, dir: &Path) -> anyhow::Result<bool> {
        let cases = self.cases("throughput");
        if cases.is_empty() {
            return Ok(false);
        }
        let mut series = Vec::new();
        for (i, t) in self.targets.iter().enumerate() {
            let pts: Vec<(f64, f64)> = cases
                .iter()
                .enumerate()
                .filter_map(|(x, c)| {
                    self.get("throughput", c, t, "writes_per_s")
                        .map(|a| (x as f64, a.med))
                })
                .collect();
            if !pts.is_empty() {
                series.push(Series {
                    label: t.clone(),
                    color: series_color(i),
                    dashed: false,
                    points: pts,
                });
            }
        }
        let ch = LineChart {
            title: "ACKNOWLEDGED WRITES PER SECOND".into(),
            x_label: "CONCURRENT WRITERS".into(),
            y_label: "WRITES/S".into(),
            categories: Some(
                cases
                    .iter()
                    .map(|c| c.trim_start_matches("W=").to_string())
                    .collect(),
            ),
            log_y: false,
            series,
        };
        std::fs::write(dir.join("throughput.png"), ch.png(800, 440))?;
        Ok(true)
    }

    pub(super) fn chart_ramp(&self, dir: &Path) -> anyhow::Result<bool> {
        let mut rates: Vec<f64> = self
            .cases("ramp-step")
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect();
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        rates.dedup();
        if rates.is_empty() {
            return Ok(false);
        }
        let mut series = Vec::new();
        for (i, t) in self.targets.iter().enumerate() {
            let pts: Vec<(f64, f64)> = rates
                .iter()
                .enumerate()
                .filter_map(|(x, r)| {
                    self.get("ramp-step", &format!("{r}"), t, "p99_ms")
                        .map(|a| (x as f64, a.med))
                })
                .collect();
            if !pts.is_empty() {
                series.push(Series {
                    label: format!("{t} p99"),
                    color: series_color(i),
                    dashed: false,
                    points: pts,
                });
            }
        }
        let ch = LineChart {
            title: "P99 LATENCY VS WRITE RATE (100 SUBSCRIBERS)".into(),
            x_label: "WRITES/S".into(),
            y_label: "P99 MS (LOG)".into(),
            categories: Some(rates.iter().map(|r| format!("{r}")).collect()),
            log_y: true,
            series,
        };
        std::fs::write(dir.join("ramp.png"), ch.png(800, 440))?;
        Ok(true)
    }
}
