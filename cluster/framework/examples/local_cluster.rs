//! Starts a `local-cluster[A,C,M]` (a real master and agents on loopback),
//! prints the master's address, and keeps it up until Ctrl-C.
//!
//! ```text
//! cargo build -p tessera-master -p tessera-agent
//! cargo run -p tessera-framework --example local_cluster -- 2 1 1024
//! ```

use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let agents: usize = num(0, "2").parse()?;
    let cpus: f64 = num(1, "1").parse()?;
    let mem_mb: u64 = num(2, "1024").parse()?;
    // Next to this example's binary: target/debug/examples/ -> target/debug/.
    let bin_dir: PathBuf = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .ok_or("cannot locate target/debug")?;
    let cluster = tessera_framework::LocalCluster::start(agents, cpus, mem_mb, &bin_dir).await?;
    println!("{}", cluster.master_address());
    eprintln!(
        "local cluster up (logs in {}); sessions connect with --master tessera://{} --credentials {}; Ctrl-C stops it",
        cluster.dir().display(),
        cluster.master_address(),
        cluster
            .credentials_dir()
            .join("frameworks")
            .join("local")
            .display()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
