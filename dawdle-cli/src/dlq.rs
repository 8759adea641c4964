//! `dawdle dlq`.

use clap::Args;

use crate::Failure;

/// Shows the backlog, the leader and the queues.
#[derive(Debug, Args)]
pub struct Dlq {}

impl Dlq {
    pub async fn run(self) -> Result<(), Failure> {
        Ok(())
    }
}
