//! Starts a throwaway PostgreSQL cluster, prints its URL on stdout and keeps
//! it running until stdin closes or this process is killed; then the
//! cluster stops and its directory goes. `scripts/test` runs it when
//! `DATABASE_URL` is unset.
//!
//! ```text
//! dawdle-test-cluster    # postgres://postgres@127.0.0.1:PORT/postgres
//! ```

use std::io::Write;
use std::process::ExitCode;

use dawdle_test::Cluster;

fn main() -> ExitCode {
    if std::env::args_os().len() > 1 {
        eprintln!(
            "usage: dawdle-test-cluster\n\
             Starts a throwaway PostgreSQL cluster (see dawdle_test::Cluster), prints its URL \
             and keeps it until stdin closes."
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("dawdle-test-cluster: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Logical WAL: capture from the WAL can be tried on it too.
    let cluster = match runtime.block_on(Cluster::builder().logical(true).start()) {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("dawdle-test-cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", cluster.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Nobody reads the URL, so nobody uses the cluster.
        runtime.block_on(cluster.stop());
        return ExitCode::FAILURE;
    }
    // What is written to stdin means nothing; its end is the signal to stop.
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    runtime.block_on(cluster.stop());
    ExitCode::SUCCESS
}
