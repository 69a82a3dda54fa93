//! `--set key=value` script parameters.
//!
//! Choice: the parameters are one constant map `params` in the main script's scope
//! (`params.nodes`), plus a function `param(key, default)` usable everywhere, including imported
//! modules and functions, which cannot see the main script's variables. Values are typed so that
//! `params.nodes + 1` works: integers, floats and `true`/`false` are parsed, anything else stays a
//! string.

use rhai::{Dynamic, Map};

/// One parsed parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// An integer (`nodes=4`).
    Int(i64),
    /// A float (`rate=2.5`).
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// Anything else, as given.
    Str(String),
}

impl ParamValue {
    fn parse(raw: &str) -> Self {
        if let Ok(i) = raw.parse::<i64>() {
            return Self::Int(i);
        }
        if let Ok(f) = raw.parse::<f64>()
            && f.is_finite()
        {
            return Self::Float(f);
        }
        match raw {
            "true" => Self::Bool(true),
            "false" => Self::Bool(false),
            _ => Self::Str(raw.to_string()),
        }
    }

    /// The value as a script value.
    pub fn to_dynamic(&self) -> Dynamic {
        match self {
            Self::Int(i) => Dynamic::from_int(*i),
            Self::Float(f) => Dynamic::from_float(*f),
            Self::Bool(b) => Dynamic::from_bool(*b),
            Self::Str(s) => Dynamic::from(s.clone()),
        }
    }
}

/// clap value parser for `KEY=VALUE`.
pub fn parse_set(raw: &str) -> Result<(String, ParamValue), String> {
    let Some((key, value)) = raw.split_once('=') else {
        return Err(format!("`{raw}` is not KEY=VALUE"));
    };
    let key = key.trim();
    let valid = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!(
            "parameter name `{key}` must be letters, digits and underscores, not starting with a digit"
        ));
    }
    Ok((key.to_string(), ParamValue::parse(value)))
}

/// The `params` map the script sees.
pub fn to_map(params: &[(String, ParamValue)]) -> Map {
    params
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.to_dynamic()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed() {
        assert_eq!(parse_set("a=1").unwrap().1, ParamValue::Int(1));
        assert_eq!(parse_set("a=1.5").unwrap().1, ParamValue::Float(1.5));
        assert_eq!(parse_set("a=true").unwrap().1, ParamValue::Bool(true));
        assert_eq!(parse_set("a=90s").unwrap().1, ParamValue::Str("90s".into()));
        assert_eq!(parse_set("a=").unwrap().1, ParamValue::Str(String::new()));
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(parse_set("novalue").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_set("1a=2").unwrap_err().contains("`1a`"));
        assert!(parse_set("a.b=2").is_err());
    }
}
