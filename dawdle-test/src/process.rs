//! What the cluster and the SQS server share: free ports, and a shell that
//! holds a server until our end of a pipe closes.

use std::process::Command;

use crate::Error;

pub(crate) fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::io("bind a port"))?;
    let addr = listener.local_addr().map_err(Error::io("bind a port"))?;
    Ok(addr.port())
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `sh -c script`, wrapped in `runuser -u postgres` when `as_postgres`.
pub(crate) fn shell(script: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }
}

/// `s` quoted for `sh`.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
