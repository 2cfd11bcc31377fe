//! A cluster's connection URL from the secret its registry row names
//! (`control.clusters.url_secret`): an environment variable of that name,
//! else a `NAME=value` line of the secrets file. The password never sits in
//! a table.
//!
//! The placement routing resolves the same secrets; this is the fleet's own
//! small resolver until the two are one.

use std::path::Path;

use secrecy::SecretString;

/// The connection URL the secret `name` holds.
pub fn cluster_url(name: &str, secrets_file: Option<&Path>) -> anyhow::Result<SecretString> {
    if let Some(v) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        return Ok(SecretString::from(v));
    }
    if let Some(path) = secrets_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the secrets file {}: {e}", path.display()))?;
        if let Some(v) = lookup(&text, name) {
            return Ok(SecretString::from(v));
        }
    }
    anyhow::bail!(
        "secret {name} is not set: export {name} or add a line {name}=<url> to the secrets file (--secrets-file)"
    )
}

/// The value of `name` in a secrets file of `NAME=value` lines (blank lines
/// and `#` comments ignored).
fn lookup(text: &str, name: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::lookup;

    #[test]
    fn a_secrets_file_is_name_value_lines() {
        let text =
            "# clusters\nBIZOS_EU_URL = postgres://a@h/x\n\nBIZOS_ID_URL=postgres://b@h/y?x=1\n";
        assert_eq!(
            lookup(text, "BIZOS_ID_URL").as_deref(),
            Some("postgres://b@h/y?x=1")
        );
        assert_eq!(
            lookup(text, "BIZOS_EU_URL").as_deref(),
            Some("postgres://a@h/x")
        );
        assert_eq!(lookup(text, "BIZOS_US_URL"), None);
    }
}
