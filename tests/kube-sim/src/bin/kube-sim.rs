//! `kube-sim`: the Kubernetes API simulator as a process (see the library docs: it is a simulator).
//!
//! `kube-sim --listen 127.0.0.1:PORT --kubeconfig-out FILE [--seed MANIFESTS.yaml]… [--backend-bin PATH]`

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
    /// Objects to create at start: a YAML manifest stream (`---`-separated documents).
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
        sim.seed_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.kubeconfig_out {
        sim.write_kubeconfig(path)?;
    }
    println!("kube-sim (a Kubernetes API simulator) listening on http://{}", sim.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
