//! The results file: what was measured, on what, and when.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One measured case on one target in one repeat.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Record {
    /// `fanout`, `ramp`, `ramp-step`, `connections`, `throughput`, `bulk`, `coldstart`, `reconnect`
    pub scenario: String,
    /// e.g. `S=100`, `W=10`
    pub case: String,
    /// target label
    pub target: String,
    /// 0-based repeat
    pub repeat: usize,
    /// flat numeric metrics
    pub metrics: BTreeMap<String, f64>,
    /// remarks (first errors, queries used)
    pub notes: Vec<String>,
}

/// A case that could not be measured.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Failure {
    /// scenario
    pub scenario: String,
    /// case
    pub case: String,
    /// target
    pub target: String,
    /// repeat
    pub repeat: usize,
    /// the error
    pub error: String,
}

/// A whole suite run.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Results {
    /// `quick` or `full`
    pub mode: String,
    /// UTC start, `date -u` style
    pub started: String,
    /// seconds the suite took
    pub duration_s: f64,
    /// machine and versions (free-form key → value)
    pub info: BTreeMap<String, String>,
    /// target label → how it was run
    pub targets: BTreeMap<String, String>,
    /// the plan's parameters, for the report
    pub params: BTreeMap<String, String>,
    /// (seconds since start, 1-min load average, machine busy cores)
    pub load: Vec<(f64, f64, f64)>,
    /// everything measured
    pub records: Vec<Record>,
    /// what failed
    pub failures: Vec<Failure>,
    /// cases skipped on purpose, with the reason
    pub skipped: Vec<String>,
}
