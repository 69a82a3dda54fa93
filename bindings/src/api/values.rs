//! Conversions between script values and engine values, each failing with a message that names
//! the parameter and the bad value.

use std::time::Duration;

use engine::deadline::{ACCEPTED_FORMS, Deadline};
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

/// A script error at `pos`.
pub fn err_at<T>(message: impl Into<String>, pos: rhai::Position) -> Res<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(
        message.into().into(),
        pos,
    )))
}

/// `e` with `pos` where it has none (rhai leaves namespaced calls such as
/// `ScenarioBuilder::with_node_counts(..)` without one).
pub fn at_call(mut e: Box<EvalAltResult>, pos: rhai::Position) -> Box<EvalAltResult> {
    if e.position().is_none() {
        e.set_position(pos);
    }
    e
}

/// Where the closure `f`'s body starts, so an error about what it returned points at the
/// closure. NONE when it is not a script closure.
pub fn closure_position(ctx: &rhai::NativeCallContext, f: &rhai::FnPtr) -> rhai::Position {
    let params = f.curry().len() + 1;
    ctx.iter_namespaces()
        .find_map(|m| m.get_script_fn(f.fn_name(), params))
        .map_or(rhai::Position::NONE, |def| def.body.start_position())
}

/// A non-negative count (`nodes`, `wallets`, indices).
pub fn count(value: INT, field: &str) -> Res<usize> {
    usize::try_from(value).or_else(|_| err(format!("{field} = {value} must not be negative")))
}

/// A non-negative 64-bit quantity (stake, balance, seed).
pub fn amount(value: INT, field: &str) -> Res<u64> {
    u64::try_from(value).or_else(|_| err(format!("{field} = {value} must not be negative")))
}

/// The longest duration a script may ask for (a run, a timeout, a sleep): 30 days. Anything
/// longer is a slip (`sleep(1e12)`, `"100000000d"`, milliseconds written as seconds) and is refused
/// naming it in human units.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// A duration: `"90s"` / `"500ms"` / `"1m 30s"` strings, or a number of seconds; never negative,
/// at most [`MAX_DURATION`].
pub fn duration(value: &Dynamic, field: &str) -> Res<Duration> {
    if let Some(s) = value.clone().try_cast::<rhai::ImmutableString>() {
        let text = s.trim();
        if text.starts_with('-') {
            return err(negative(field, &format!("\"{s}\"")));
        }
        let d = humantime::parse_duration(text).or_else(|e| {
            err(format!(
                "{field} = \"{s}\" is not a duration ({e}); write e.g. \"90s\", \"500ms\" or a number of seconds"
            ))
        })?;
        return capped(d, field, &format!("\"{s}\""));
    }
    if let Ok(i) = value.as_int() {
        let Ok(secs) = u64::try_from(i) else {
            return err(negative(field, &i.to_string()));
        };
        return capped(Duration::from_secs(secs), field, &i.to_string());
    }
    if let Ok(f) = value.as_float() {
        if f.is_nan() {
            return err(format!("{field} = {f} is not a number of seconds"));
        }
        if f < 0.0 {
            return err(negative(field, &f.to_string()));
        }
        return match Duration::try_from_secs_f64(f) {
            Ok(d) => capped(d, field, &f.to_string()),
            // only past u64 seconds (or infinite): absurd either way
            Err(_) => err(format!(
                "{field} = {f}: a duration of {f} seconds is absurd: at most {}",
                human(MAX_DURATION)
            )),
        };
    }
    err(format!(
        "{field} expects a duration such as \"90s\" or a number of seconds, got {}",
        a_type(value)
    ))
}

/// The most slots or blocks a deadline may count: 30 days at the shortest slot (100 ms).
pub const MAX_PROTOCOL_UNITS: u64 = 25_920_000;

/// A deadline: a [`duration`], or `"N slots"` / `"N blocks"` kept in protocol units until the
/// testnet's consensus parameters turn them into time. A bad unit or count is refused naming
/// the value and the accepted forms.
pub fn deadline(value: &Dynamic, field: &str) -> Res<Deadline> {
    let Some(s) = value.clone().try_cast::<rhai::ImmutableString>() else {
        if value.is_int() || value.is_float() {
            return duration(value, field).map(Deadline::Time);
        }
        return err(format!(
            "{field} expects a deadline ({ACCEPTED_FORMS}, or a number of seconds), got {}",
            a_type(value)
        ));
    };
    let text = s.trim();
    if text.starts_with('-') {
        return err(format!(
            "{field} = \"{s}\" is negative: a deadline must be zero or more ({ACCEPTED_FORMS})"
        ));
    }
    match engine::deadline::parse(text) {
        Ok(Deadline::Time(_)) => duration(value, field).map(Deadline::Time),
        Ok(d @ (Deadline::Slots(n) | Deadline::Blocks(n))) if n > MAX_PROTOCOL_UNITS => {
            err(format!(
                "{field} = \"{s}\": {d} is absurd: at most {MAX_PROTOCOL_UNITS} (30 days of 100ms slots)"
            ))
        }
        Ok(d) => Ok(d),
        Err(e) => err(format!(
            "{field} = \"{s}\" is not a deadline ({e}); write {ACCEPTED_FORMS}, or a number of seconds"
        )),
    }
}

fn negative(field: &str, shown: &str) -> String {
    format!(
        "{field} = {shown} is negative: a duration must be zero or more (\"90s\", \"500ms\" or a number of seconds)"
    )
}

fn capped(d: Duration, field: &str, shown: &str) -> Res<Duration> {
    if d > MAX_DURATION {
        return err(format!(
            "{field} = {shown}: a duration of {} is absurd: at most {}",
            human(d),
            human(MAX_DURATION)
        ));
    }
    Ok(d)
}

/// A duration in its two largest human units: `273972y 222d`, `30d`, `1h 30m`, `1.5s`, `250ms`.
pub fn human(d: Duration) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("y", 365 * 86_400),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ];
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    if secs < 60 {
        let ms = d.subsec_millis();
        return if ms == 0 {
            format!("{secs}s")
        } else {
            let frac = format!("{ms:03}");
            format!("{secs}.{}s", frac.trim_end_matches('0'))
        };
    }
    let mut parts = Vec::new();
    let mut rest = secs;
    for (unit, size) in UNITS {
        let n = rest / size;
        rest %= size;
        if n > 0 || !parts.is_empty() {
            parts.push((n, unit));
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value's type as a script writer names it, with its article: `an int`, `a string`,
/// `an array`, `a TopologyBuilder`.
pub fn a_type(value: &Dynamic) -> String {
    if value.is_unit() {
        return "nothing (its last statement is not an expression: a `let`, an `if` without \
                `else`, a loop)"
            .to_string();
    }
    let name = crate::diagnostics::script_type_name(value.type_name());
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// A probability, `0.0..=1.0` (an integer 0 or 1 too); the error names `what`.
pub fn probability(p: &Dynamic, what: &str) -> Res<f64> {
    let p = number(p, what)?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        err(format!("{what} = {p} must be within 0.0..=1.0"))
    }
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
    err(format!("{field} expects a number, got {}", a_type(value)))
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
            "{field} expects node indices (integers), got {}",
            a_type_named(t)
        )),
    }
}

fn a_type_named(rust_name: &str) -> String {
    let name = crate::diagnostics::script_type_name(rust_name);
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
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
    fn deadlines_keep_slots_and_blocks_and_take_durations() {
        let d = |v: Dynamic| deadline(&v, "wait_converged deadline");
        assert_eq!(d(Dynamic::from("20 slots")).unwrap(), Deadline::Slots(20));
        assert_eq!(d(Dynamic::from("1 block")).unwrap(), Deadline::Blocks(1));
        assert_eq!(
            d(Dynamic::from("90s")).unwrap(),
            Deadline::Time(Duration::from_secs(90))
        );
        assert_eq!(
            d(Dynamic::from_int(3)).unwrap(),
            Deadline::Time(Duration::from_secs(3))
        );
        assert_eq!(
            d(Dynamic::from_float(0.5)).unwrap(),
            Deadline::Time(Duration::from_millis(500))
        );
        // a bad unit or count names the value and every accepted form
        for (bad, says) in [
            (
                "5 epochs",
                "wait_converged deadline = \"5 epochs\" is not a deadline",
            ),
            ("2.5 slots", "\"2.5\" is not a whole number of slots"),
            ("many blocks", "\"many\" is not a whole number of blocks"),
            ("-3 slots", "\"-3 slots\" is negative"),
        ] {
            let e = d(Dynamic::from(bad)).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(
                e.contains("\"N slots\" or \"N blocks\"") && e.contains("\"90s\""),
                "{bad}: {e}"
            );
        }
        let e = d(Dynamic::from("99999999999 slots"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("99999999999 slots is absurd"), "{e}");
        let e = d(Dynamic::from_int(-2)).unwrap_err().to_string();
        assert!(e.contains("= -2 is negative"), "{e}");
        let e = d(Dynamic::from(true)).unwrap_err().to_string();
        assert!(e.contains("expects a deadline"), "{e}");
        // the time form keeps the duration's bound
        let e = d(Dynamic::from("100000000d")).unwrap_err().to_string();
        assert!(e.contains("is absurd: at most 30d"), "{e}");
    }

    #[test]
    fn negative_durations_are_refused_alike_as_int_float_or_string() {
        for (value, shown) in [
            (Dynamic::from_int(-1), "sleep = -1 is negative"),
            (Dynamic::from_float(-0.5), "sleep = -0.5 is negative"),
            (Dynamic::from("-3s"), "sleep = \"-3s\" is negative"),
        ] {
            let e = duration(&value, "sleep").unwrap_err().to_string();
            assert!(e.contains(shown), "{e}");
            assert!(e.contains("a duration must be zero or more"), "{e}");
        }
        assert!(duration(&Dynamic::from_float(f64::NAN), "d").is_err());
    }

    #[test]
    fn absurd_durations_are_named_in_human_units() {
        let e = duration(&Dynamic::from("100000000d"), "sleep")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sleep = \"100000000d\": a duration of 273972y 220d is absurd: at most 30d"),
            "{e}"
        );
        let e = duration(&Dynamic::from_float(1e12), "sleep")
            .unwrap_err()
            .to_string();
        assert!(e.contains("31709y 289d is absurd"), "{e}");
        let e = duration(&Dynamic::from_float(1e300), "d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is absurd: at most 30d"), "{e}");
        assert!(duration(&Dynamic::from_int(i64::MAX), "d").is_err());
        assert_eq!(duration(&Dynamic::from("30d"), "d").unwrap(), MAX_DURATION);
    }

    #[test]
    fn human_units() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_secs(90)), "1m 30s");
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(86_400 + 60)), "1d");
        assert_eq!(human(MAX_DURATION), "30d");
    }

    #[test]
    fn types_are_named_as_scripts_name_them() {
        assert_eq!(a_type(&Dynamic::from_int(1)), "an int");
        assert_eq!(a_type(&Dynamic::from("x")), "a string");
        assert_eq!(a_type(&Dynamic::from_array(vec![])), "an array");
        assert_eq!(a_type(&Dynamic::from_bool(true)), "a bool");
        assert_eq!(a_type(&Dynamic::from_float(1.0)), "a float");
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
