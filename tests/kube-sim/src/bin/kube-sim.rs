//! `kube-sim`: the Kubernetes API simulator as a process (see the library docs: it is a simulator).
//!
//! `kube-sim --listen 127.0.0.1:PORT --kubeconfig-out FILE [--seed MANIFESTS.json]… [--backend-bin PATH]`

use std::path::PathBuf;

use clap::Parser;

/// Kubernetes API simulator for LeanNodes tests (not a real API server).
#[derive(Debug, Parser)]
#[command(name = "kube-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Write a kubeconfig for this simulator here.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Objects to create at start: JSON documents, one per line or as a JSON array.
    #[arg(long)]
    seed: Vec<PathBuf>,
    /// The program pods run (their container `args` follow it).
    #[arg(long, default_value = "leannodes")]
    backend_bin: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).try_init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let sim = leannodes_kube_sim::Sim::start(listener, leannodes_kube_sim::SimOptions { backend_bin: args.backend_bin }).await?;
    for path in &args.seed {
        let text = std::fs::read_to_string(path)?;
        let objects: Vec<serde_json::Value> = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Array(items)) => items,
            Ok(single) => vec![single],
            Err(_) => text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect::<Result<_, _>>()?,
        };
        sim.seed(objects)?;
    }
    if let Some(path) = &args.kubeconfig_out {
        sim.write_kubeconfig(path)?;
    }
    println!("kube-sim (a Kubernetes API simulator) listening on http://{}", sim.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
