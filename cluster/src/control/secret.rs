//! Where a process finds the cluster secret: a file named on the command
//! line or in `cluster.toml`, else the file `SLUICE_SECRET_FILE` names, else
//! the text of `SLUICE_SECRET`. Errors name the file, never the secret.

use std::path::Path;

use sluice_network::auth::ClusterSecret;

/// The cluster secret from `file`, or from the environment.
pub fn load_secret(file: Option<&Path>) -> Result<ClusterSecret, String> {
    let from_env = std::env::var_os("SLUICE_SECRET_FILE");
    let file = file.or(from_env.as_deref().map(Path::new));
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            format!(
                "cannot read the cluster secret file {}: {e}",
                file.display()
            )
        })?;
        return ClusterSecret::new(&text).map_err(|e| format!("{}: {e}", file.display()));
    }
    match std::env::var("SLUICE_SECRET") {
        Ok(text) => ClusterSecret::new(&text).map_err(|e| format!("SLUICE_SECRET: {e}")),
        Err(_) => Err(
            "no cluster secret: give --secret-file, or set SLUICE_SECRET_FILE or SLUICE_SECRET"
                .into(),
        ),
    }
}
