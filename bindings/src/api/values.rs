//! Conversions between script values and engine values, each failing with a message that names
//! the parameter and the bad value.

use std::time::Duration;

use rhai::{Array, Dynamic, EvalAltResult, INT, Map};

/// Result of a native function.
pub type Res<T> = Result<T, Box<EvalAltResult>>;

/// A script error with this message (rhai fills in the call site's position).
pub fn err<T>(message: impl Into<String>) -> Res<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(
        message.into().into(),
        rhai::Position::NONE,
    )))
}

/// A non-negative count (`nodes`, `wallets`, indices).
pub fn count(value: INT, field: &str) -> Res<usize> {
    usize::try_from(value).or_else(|_| err(format!("{field} = {value} must not be negative")))
}

/// A non-negative 64-bit quantity (stake, balance, seed).
pub fn amount(value: INT, field: &str) -> Res<u64> {
    u64::try_from(value).or_else(|_| err(format!("{field} = {value} must not be negative")))
}

/// A duration: `"90s"` / `"500ms"` / `"1m 30s"` strings, or a number of seconds.
pub fn duration(value: &Dynamic, field: &str) -> Res<Duration> {
    if let Some(s) = value.clone().try_cast::<rhai::ImmutableString>() {
        return humantime::parse_duration(s.trim()).or_else(|e| {
            err(format!(
                "{field} = \"{s}\" is not a duration ({e}); write e.g. \"90s\", \"500ms\" or a number of seconds"
            ))
        });
    }
    if let Ok(i) = value.as_int() {
        return u64::try_from(i)
            .map(Duration::from_secs)
            .or_else(|_| err(format!("{field} = {i} must not be negative")));
    }
    if let Ok(f) = value.as_float() {
        return Duration::try_from_secs_f64(f)
            .or_else(|_| err(format!("{field} = {f} is not a valid number of seconds")));
    }
    err(format!(
        "{field} expects a duration such as \"90s\" or a number of seconds, got a {}",
        value.type_name()
    ))
}

/// A float that may be written as an integer (`rate(5)`).
pub fn number(value: &Dynamic, field: &str) -> Res<f64> {
    if let Ok(f) = value.as_float() {
        return Ok(f);
    }
    if let Ok(i) = value.as_int() {
        #[expect(clippy::cast_precision_loss, reason = "script numbers are small")]
        return Ok(i as f64);
    }
    err(format!(
        "{field} expects a number, got a {}",
        value.type_name()
    ))
}

/// A script value as YAML (config override values).
pub fn to_yaml(value: &Dynamic, field: &str) -> Res<serde_yaml::Value> {
    rhai::serde::from_dynamic::<serde_yaml::Value>(value).or_else(|e| {
        err(format!(
            "{field}: value {value} cannot be written into a node config: {e}"
        ))
    })
}

/// Any serializable engine value as a script value (maps, arrays).
pub fn to_script<T: serde::Serialize>(value: &T) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}

/// A JSON value as a script value.
pub fn json_to_script(value: &serde_json::Value) -> Dynamic {
    to_script(value)
}

/// `[[0, 1], [2, 3]]` as groups of node indices.
pub fn index_groups(value: &Array, field: &str) -> Res<Vec<Vec<usize>>> {
    value
        .iter()
        .map(|g| {
            let group = g.read_lock::<Array>().ok_or_else(|| {
                EvalAltResult::ErrorRuntime(
                    format!("{field} expects an array of arrays of node indices, got {g}").into(),
                    rhai::Position::NONE,
                )
            })?;
            group.iter().map(|i| index(i, field)).collect()
        })
        .collect()
}

/// One node index.
pub fn index(value: &Dynamic, field: &str) -> Res<usize> {
    match value.as_int() {
        Ok(i) => count(i, field),
        Err(t) => err(format!(
            "{field} expects node indices (integers), got a {t}"
        )),
    }
}

/// `[[0, 1], [1, 2]]` as edges.
pub fn edges(value: &Array) -> Res<Vec<(usize, usize)>> {
    index_groups(value, "edges")?
        .into_iter()
        .map(|pair| match pair[..] {
            [a, b] => Ok((a, b)),
            _ => err(format!(
                "edges expects pairs [a, b] of node indices, got {pair:?}"
            )),
        })
        .collect()
}

/// A map with string keys from pairs.
pub fn map<const N: usize>(pairs: [(&str, Dynamic); N]) -> Map {
    pairs.into_iter().map(|(k, v)| (k.into(), v)).collect()
}

/// A `u64` as a script integer (saturating; script integers are i64).
pub fn int(v: u64) -> Dynamic {
    Dynamic::from_int(INT::try_from(v).unwrap_or(INT::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_strings_and_seconds() {
        assert_eq!(
            duration(&Dynamic::from("90s"), "d").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            duration(&Dynamic::from("500ms"), "d").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            duration(&Dynamic::from_int(3), "d").unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(
            duration(&Dynamic::from_float(0.25), "d").unwrap(),
            Duration::from_millis(250)
        );
        let e = duration(&Dynamic::from("soon"), "with_run_duration").unwrap_err();
        assert!(
            e.to_string().contains("with_run_duration = \"soon\""),
            "{e}"
        );
        assert!(duration(&Dynamic::from_int(-1), "d").is_err());
    }

    #[test]
    fn yaml_values_convert() {
        assert_eq!(
            to_yaml(&Dynamic::from_int(5), "o").unwrap(),
            serde_yaml::Value::from(5)
        );
        assert_eq!(
            to_yaml(&Dynamic::from_bool(true), "o").unwrap(),
            serde_yaml::Value::from(true)
        );
    }
}
