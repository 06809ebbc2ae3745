//! Readings from /proc: a process's CPU time and RSS, the machine's CPU
//! idle share and load average, and the machine description.

use std::time::Instant;

/// Clock ticks per second for /proc/<pid>/stat (USER_HZ is 100 on Linux).
const HZ: f64 = 100.0;

/// User+system CPU seconds of a process (all threads), if readable.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // after the comm: state(0) ppid(1) … utime(11) stime(12)
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / HZ)
}

/// Resident set size in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    for l in s.lines() {
        if let Some(v) = l.strip_prefix("VmRSS:") {
            let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().ok()?;
            return Some(kb * 1024);
        }
    }
    None
}

/// (busy, total) jiffies of all CPUs from /proc/stat.
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let l = s.lines().next()?;
    let v: Vec<u64> = l
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

/// The 1-minute load average.
pub fn loadavg1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Number of online CPUs.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// CPU accounting over an interval: this process, the server, the machine.
pub struct CpuWindow {
    start: Instant,
    own: f64,
    server: Option<(u32, f64)>,
    machine: Option<(u64, u64)>,
}

/// What a [`CpuWindow`] measured, in cores (1.0 = one core busy all the time).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    /// Wall seconds of the window.
    pub wall: f64,
    /// The generator's own CPU, in cores.
    pub generator: f64,
    /// The server's CPU, in cores (NaN when it is not our child).
    pub server: f64,
    /// The whole machine's busy share, in cores (includes other users).
    pub machine: f64,
    /// Server CPU seconds spent in the window.
    pub server_seconds: f64,
}

impl CpuWindow {
    /// Start measuring; `server_pid` when the server is a process we know.
    pub fn start(server_pid: Option<u32>) -> Self {
        CpuWindow {
            start: Instant::now(),
            own: cpu_seconds(std::process::id()).unwrap_or(0.0),
            server: server_pid.and_then(|p| cpu_seconds(p).map(|c| (p, c))),
            machine: machine_jiffies(),
        }
    }

    /// Stop and compute.
    pub fn stop(&self) -> CpuUse {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        let own = cpu_seconds(std::process::id()).unwrap_or(0.0) - self.own;
        let (server, server_seconds) = match self.server {
            Some((p, c0)) => match cpu_seconds(p) {
                Some(c) => ((c - c0) / wall, c - c0),
                None => (f64::NAN, f64::NAN),
            },
            None => (f64::NAN, f64::NAN),
        };
        let machine = match (self.machine, machine_jiffies()) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                (b1 - b0) as f64 / (t1 - t0) as f64 * cores() as f64
            }
            _ => f64::NAN,
        };
        CpuUse {
            wall,
            generator: own / wall,
            server,
            machine,
            server_seconds,
        }
    }
}

/// First line of `cmd --version` (or of whatever `args` print).
pub fn version_of(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let s = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&s)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

/// CPU model name.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Total memory in bytes.
pub fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|x| x.parse::<u64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Kernel release.
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
