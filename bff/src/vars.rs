//! The kit every module reads its settings from the environment with: a
//! clap value parser whose refusals name the variable (`BIZOS_X is
//! invalid: …`), the value parsers the modules share, [`ConfigError`] and
//! [`from_lookup`]. Each module declares its own variables (an `Args`
//! struct beside its settings type) with this kit; [`crate::config`] only
//! assembles them into the commands. Nothing here imports from the crate,
//! so every module may import it.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Arg, Args, Command, FromArgMatches};
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {why}")]
    Missing {
        var: &'static str,
        why: &'static str,
    },
    /// A value refused while parsing: `BIZOS_X is invalid: …`.
    #[error("{0}")]
    Invalid(String),
}

/// Reads the arguments `A` through `get` instead of the process
/// environment (tests and tools that build a part in process): the same
/// variables, defaults and checks as the command `A` is flattened into.
pub fn from_lookup<A: Args + FromArgMatches>(
    get: impl Fn(&str) -> Option<String>,
) -> Result<A, ConfigError> {
    let mut argv: Vec<OsString> = vec!["lookup".into()];
    let cmd = A::augment_args(Command::new("lookup")).mut_args(|arg| {
        let value = arg
            .get_env()
            .and_then(|var| get(&var.to_string_lossy()))
            .filter(|v| !v.trim().is_empty());
        if let (Some(value), Some(long)) = (value, arg.get_long()) {
            argv.push(format!("--{long}={value}").into());
        }
        // Only `get` is read, never the process environment.
        arg.env(None)
    });
    parse(cmd, argv)
}

/// Reads the arguments `A` from flags only, never the process environment
/// (unit tests of a module's variables).
#[cfg(test)]
pub fn from_flags<A: Args + FromArgMatches>(flags: &[&str]) -> Result<A, ConfigError> {
    let cmd = A::augment_args(Command::new("flags")).mut_args(|a| a.env(None));
    parse(cmd, std::iter::once("flags").chain(flags.iter().copied()))
}

fn parse<A: FromArgMatches>(
    cmd: Command,
    argv: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<A, ConfigError> {
    cmd.try_get_matches_from(argv)
        .and_then(|m| A::from_arg_matches(&m))
        .map_err(|e| ConfigError::Invalid(first_line(&e)))
}

/// A clap error's message without clap's `error: ` prefix and usage lines.
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// Treats variables set to blanks as unset, for every argument of `cmd`
/// and its subcommands (clap would hand `""` to the value parser).
pub fn blank_env_is_unset(cmd: Command) -> Command {
    cmd.mut_args(|arg| {
        let blank = arg
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|v| v.to_string_lossy().trim().is_empty());
        if blank {
            arg.env(None)
        } else {
            arg
        }
    })
    .mut_subcommands(blank_env_is_unset)
}

/// A value parser whose refusals name the argument's variable:
/// `BIZOS_X is invalid: <why>`.
#[derive(Clone)]
pub struct Var<T> {
    parse: fn(&str) -> Result<T, String>,
    choices: &'static [&'static str],
}

pub fn var<T>(parse: fn(&str) -> Result<T, String>) -> Var<T> {
    Var {
        parse,
        choices: &[],
    }
}

impl<T> Var<T> {
    /// The values to list in `--help`.
    pub fn choices(self, choices: &'static [&'static str]) -> Self {
        Var { choices, ..self }
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Var<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &Command, arg: Option<&Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let refuse = |why: String| {
            // The variable; `--x-y` stands for BIZOS_X_Y (also when
            // `from_lookup` has taken the variables off).
            let name = arg.map_or_else(String::new, |a| match a.get_env() {
                Some(var) => var.to_string_lossy().into_owned(),
                None => env_name(a.get_long().unwrap_or_default()),
            });
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("{name} is invalid: {why}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("is not UTF-8".into()))?;
        (self.parse)(text).map_err(refuse)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        if self.choices.is_empty() {
            return None;
        }
        Some(Box::new(self.choices.iter().map(PossibleValue::new)))
    }
}

/// The variable of flag `--x-y`: `BIZOS_X_Y`, or `OTEL_X_Y` for the
/// standard OpenTelemetry variables (`--otel-…`).
pub fn env_name(long: &str) -> String {
    let name = long.replace('-', "_").to_uppercase();
    if name.starts_with("OTEL_") {
        name
    } else {
        format!("BIZOS_{name}")
    }
}

pub fn text(v: &str) -> Result<String, String> {
    Ok(v.to_owned())
}

pub fn path(v: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(v))
}

pub fn secret(v: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(v))
}

pub fn number<T>(v: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    v.trim().parse().map_err(|e| format!("{v:?}: {e}"))
}

pub fn positive<T>(v: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + Default,
    T::Err: std::fmt::Display,
{
    let n: T = number(v)?;
    if n <= T::default() {
        return Err("must be greater than zero".into());
    }
    Ok(n)
}

pub fn seconds(v: &str) -> Result<Duration, String> {
    number(v).map(Duration::from_secs)
}

pub fn positive_millis(v: &str) -> Result<Duration, String> {
    positive(v).map(Duration::from_millis)
}

pub fn positive_seconds(v: &str) -> Result<Duration, String> {
    positive(v).map(Duration::from_secs)
}

pub fn http_url(v: &str) -> Result<String, String> {
    if !(v.starts_with("https://") || v.starts_with("http://")) {
        return Err("must be an http(s) URL".into());
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_variables_are_unset() {
        std::env::set_var("BIZOS_CONFIG_TEST_BLANK", "   ");
        let cmd = blank_env_is_unset(
            Command::new("t").subcommand(
                Command::new("sub").arg(
                    Arg::new("x")
                        .long("x")
                        .env("BIZOS_CONFIG_TEST_BLANK")
                        .default_value("fallback"),
                ),
            ),
        );
        let m = cmd.try_get_matches_from(["t", "sub"]).unwrap();
        std::env::remove_var("BIZOS_CONFIG_TEST_BLANK");
        let sub = m.subcommand_matches("sub").unwrap();
        assert_eq!(sub.get_one::<String>("x").unwrap(), "fallback");
    }
}
