//! The scale benchmark, small: 2,000 emulated agents and 200 frameworks through the master's
//! state machine. The benchmark checks every cycle itself (each free agent offered once and
//! whole, the frameworks' holdings within one agent of each other) and fails if one is not.

use std::process::Command;

#[test]
fn emulated_agents_are_all_offered_and_shared_fairly() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-scale"))
        .args(["2000", "3"])
        .output()
        .expect("tessera-scale runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tessera-scale failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| 2000 |"))
        .unwrap_or_else(|| panic!("no row for 2000 agents in:\n{stdout}"));
    // Nine figures, each a time or a size.
    let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
    assert_eq!(cells.len(), 9, "{row}");
    assert!(
        cells[1..]
            .iter()
            .all(|c| c.ends_with(" ms") || c.ends_with(" KiB")),
        "{row}"
    );
}
