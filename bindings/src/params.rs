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

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x:?}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Str(s) => f.write_str(s),
        }
    }
}

/// `param(key, default)` given `--set key=value`: the value, checked against the type of the
/// default. An int default takes an int; a float default an int or a float (as a float); a bool
/// default `true`/`false`; a string default or any other (unit, array, map) anything, as parsed
/// (so a duration default `"90s"` also takes `--set duration=10`, seconds).
pub fn checked(key: &str, value: &ParamValue, default: &Dynamic) -> Result<Dynamic, String> {
    let wrong = |what: &str| {
        Err(format!(
            "--set {key}={value}: param '{key}' is {what} (default {default}), got '{value}'"
        ))
    };
    if default.is_int() {
        return match value {
            ParamValue::Int(i) => Ok(Dynamic::from_int(*i)),
            _ => wrong("an int"),
        };
    }
    if default.is_float() {
        return match value {
            #[expect(clippy::cast_precision_loss, reason = "script parameters are small")]
            ParamValue::Int(i) => Ok(Dynamic::from_float(*i as f64)),
            ParamValue::Float(x) => Ok(Dynamic::from_float(*x)),
            _ => wrong("a float"),
        };
    }
    if default.is_bool() {
        return match value {
            ParamValue::Bool(b) => Ok(Dynamic::from_bool(*b)),
            _ => wrong("a bool (true or false)"),
        };
    }
    // a string default takes anything, as parsed: a duration default ("90s") also takes
    // `--set duration=10` (seconds), as a duration argument does
    Ok(value.to_dynamic())
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
    fn values_are_checked_against_the_default() {
        let int = ParamValue::Int(4);
        let abc = ParamValue::Str("abc".into());
        assert_eq!(
            checked("nodes", &abc, &Dynamic::from_int(4)).unwrap_err(),
            "--set nodes=abc: param 'nodes' is an int (default 4), got 'abc'"
        );
        assert!(
            checked("nodes", &ParamValue::Float(2.5), &Dynamic::from_int(4))
                .unwrap_err()
                .contains("is an int (default 4), got '2.5'")
        );
        assert_eq!(
            checked("nodes", &int, &Dynamic::from_int(1))
                .unwrap()
                .as_int()
                .unwrap(),
            4
        );
        let rate = checked("rate", &int, &Dynamic::from_float(1.5)).unwrap();
        assert!((rate.as_float().unwrap() - 4.0).abs() < f64::EPSILON);
        assert!(
            checked("fast", &abc, &Dynamic::from_bool(false))
                .unwrap_err()
                .contains("param 'fast' is a bool (true or false) (default false), got 'abc'")
        );
        let secs = checked("duration", &int, &Dynamic::from("90s")).unwrap();
        assert_eq!(secs.as_int().unwrap(), 4);
        let any = checked("any", &abc, &Dynamic::UNIT).unwrap();
        assert_eq!(any.into_string().unwrap(), "abc");
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(parse_set("novalue").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_set("1a=2").unwrap_err().contains("`1a`"));
        assert!(parse_set("a.b=2").is_err());
    }
}
