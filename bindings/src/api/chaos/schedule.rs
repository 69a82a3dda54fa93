//! The `schedule` chaos kind: its steps read from script maps.

use super::*;

pub(super) fn nodes(a: &Array, what: &str) -> Res<Vec<usize>> {
    a.iter().map(|v| index(v, what)).collect()
}

/// Calls the `chaos_with` closure and checks it returned the chaos builder.
pub(in crate::api) fn call_chaos(ctx: &NativeCallContext, f: &FnPtr) -> Res<ChaosBuilder> {
    let out: Dynamic = f.call_within_context(ctx, (ChaosBuilder::new(),))?;
    let found = crate::api::values::a_type(&out);
    match out.try_cast::<ChaosBuilder>() {
        Some(c) => Ok(c),
        None => crate::api::values::err_at(
            format!(
                "the closure given to chaos_with must return the ChaosBuilder (end each fault with .apply(), e.g. `|c| c.restart().apply()`), but it returned {found}"
            ),
            crate::api::scenario::closure_or_call(ctx, f),
        ),
    }
}

/// A map argument names only `known` keys.
pub(super) fn check_keys(m: &Map, what: &str, known: &[&str]) -> Res<()> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => err(format!(
            "{what}: key `{k}` is unknown (known: {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// A schedule step's links: absent or `"all"`, a node index (its every link), `[a, b]` (both
/// directions) or `"a->b"` (one direction).
pub(super) fn schedule_links(v: Option<&Dynamic>) -> Res<LinkSel> {
    let Some(v) = v else {
        return Ok(LinkSel::All);
    };
    if let Ok(s) = v.clone().into_immutable_string() {
        let t = s.trim();
        if t == "all" {
            return Ok(LinkSel::All);
        }
        if let Some((a, b)) = t.split_once("->")
            && let (Ok(a), Ok(b)) = (a.trim().parse(), b.trim().parse())
        {
            return Ok(LinkSel::Link(a, b));
        }
        return err(format!(
            "schedule links = {s:?}: expected \"all\", a node index, [a, b] or \"a->b\""
        ));
    }
    if v.is_int() {
        return Ok(LinkSel::Node(index(v, "schedule links")?));
    }
    if let Some(a) = v.read_lock::<Array>()
        && a.len() == 2
    {
        return Ok(LinkSel::Both(
            index(&a[0], "schedule links")?,
            index(&a[1], "schedule links")?,
        ));
    }
    err(format!(
        "schedule links = {v}: expected \"all\", a node index, [a, b] or \"a->b\""
    ))
}

pub(super) fn schedule_action(name: &str, arg: &Dynamic) -> Res<ChaosAction> {
    let node = |what: &str| index(arg, &format!("schedule {what}"));
    Ok(match name {
        "restart" => ChaosAction::Restart(node("restart")?),
        "stop" => ChaosAction::Stop(node("stop")?),
        "kill" => ChaosAction::Kill(node("kill")?),
        "start" => ChaosAction::Start(node("start")?),
        "pause" => ChaosAction::Pause(node("pause")?),
        "resume" => ChaosAction::Resume(node("resume")?),
        "isolate" => ChaosAction::Isolate(node("isolate")?),
        "disk_full" => ChaosAction::DiskFull(node("disk_full")?),
        "lose_unflushed" => {
            let parts = arg
                .read_lock::<Array>()
                .map(|a| a.clone())
                .unwrap_or_default();
            match parts.as_slice() {
                [n, blocks] if blocks.is_int() => ChaosAction::LoseUnflushed {
                    node: index(n, "schedule lose_unflushed node")?,
                    blocks: index(blocks, "schedule lose_unflushed blocks")? as u64,
                },
                _ => {
                    return err(format!(
                        "schedule lose_unflushed expects [node, blocks], got {arg}"
                    ));
                }
            }
        }
        "heal" => ChaosAction::Heal,
        "honest" => ChaosAction::Honest(node("honest")?),
        "byzantine" => {
            let parts = arg
                .read_lock::<Array>()
                .map(|a| a.clone())
                .unwrap_or_default();
            match parts.as_slice() {
                [n, name] | [n, name, _] if name.is_string() => ChaosAction::Byzantine {
                    node: index(n, "schedule byzantine node")?,
                    behaviour: crate::api::byzantine::behaviour(
                        &name.to_string(),
                        parts.get(2).unwrap_or(&Dynamic::UNIT),
                    )?,
                },
                _ => {
                    return err(format!(
                        "schedule byzantine expects [node, behaviour] or [node, behaviour, parameter], got {arg}"
                    ));
                }
            }
        }
        "partition" => match arg.read_lock::<Array>() {
            Some(a) => ChaosAction::Partition(index_groups(&a, "schedule partition")?),
            None => {
                return err(format!(
                    "schedule partition expects groups such as [[0, 1], [2, 3]], got {arg}"
                ));
            }
        },
        "latency" => match arg.read_lock::<Map>() {
            Some(m) => {
                check_keys(&m, "schedule latency", &["delay", "jitter", "links"])?;
                ChaosAction::Latency {
                    links: schedule_links(m.get("links"))?,
                    delay: duration(
                        m.get("delay").unwrap_or(&Dynamic::UNIT),
                        "schedule latency delay",
                    )?,
                    jitter: match m.get("jitter") {
                        Some(j) => duration(j, "schedule latency jitter")?,
                        None => Duration::ZERO,
                    },
                }
            }
            None => ChaosAction::Latency {
                links: LinkSel::All,
                delay: duration(arg, "schedule latency")?,
                jitter: Duration::ZERO,
            },
        },
        "loss" => {
            let (p, links) = match arg.read_lock::<Map>() {
                Some(m) => {
                    check_keys(&m, "schedule loss", &["probability", "links"])?;
                    (
                        number(
                            m.get("probability").unwrap_or(&Dynamic::UNIT),
                            "schedule loss probability",
                        )?,
                        schedule_links(m.get("links"))?,
                    )
                }
                None => (number(arg, "schedule loss")?, LinkSel::All),
            };
            if !(0.0..=1.0).contains(&p) {
                return err(format!(
                    "schedule loss = {p}: a probability must be in [0, 1]"
                ));
            }
            ChaosAction::Loss {
                links,
                probability: p,
            }
        }
        "clock" => {
            let Some(m) = arg.read_lock::<Map>() else {
                return err(format!(
                    "schedule clock expects #{{ node: 1, offset_ms: -1500 }}, got {arg}"
                ));
            };
            check_keys(&m, "schedule clock", &["node", "offset_ms"])?;
            let Some(offset) = m.get("offset_ms").and_then(|v| v.as_int().ok()) else {
                return err(format!(
                    "schedule clock offset_ms = {}: expected an int (ms; negative: behind)",
                    m.get("offset_ms").cloned().unwrap_or(Dynamic::UNIT)
                ));
            };
            ChaosAction::Clock {
                node: index(
                    m.get("node").unwrap_or(&Dynamic::UNIT),
                    "schedule clock node",
                )?,
                offset_ms: offset,
            }
        }
        other => {
            return err(format!(
                "schedule action = \"{other}\" is unknown (restart, stop, kill, start, pause, resume, isolate, disk_full, lose_unflushed, partition, latency, loss, clock, heal, byzantine, honest)"
            ));
        }
    })
}
