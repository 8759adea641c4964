//! `dawdle status`.

use clap::Args;

use crate::Failure;

/// Shows the backlog, the leader and the queues.
#[derive(Debug, Args)]
pub struct Status {}

impl Status {
    pub async fn run(self) -> Result<(), Failure> {
        Ok(())
    }
}
