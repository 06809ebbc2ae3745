//! Process-wide settings of the real binary, read back from the kernel.

mod common;

use common::{free_port, start};

/// Transparent huge pages are off for the server's process: with them, the
/// allocator's fresh memory was faulted in 2 MiB at a time and the kernel
/// spent half of a 100,000-entity `/bulk-insert` zeroing pages.
#[cfg(target_os = "linux")]
#[test]
fn the_server_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&dir.path().join("ferry.db"), free_port());
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .expect("the kernel reports THP_enabled");
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
}
