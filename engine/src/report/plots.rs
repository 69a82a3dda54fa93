//! SVG plots of a recorded run, drawn with plotters' SVG backend (text is
//! emitted as SVG `<text>`, so no font files are needed to render or view).
//! Every time plot shares one axis: seconds since the run's first event, with
//! faults and node outages shaded on it.

use std::fmt::Display;

use plotters::prelude::*;

use crate::report::recorder::{RecordedRun, Span, SpanKind};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 340;
/// Shading of network faults (red) and node outages (grey).
const FAULT_COLOR: RGBColor = RGBColor(214, 39, 40);
const DOWN_COLOR: RGBColor = RGBColor(110, 110, 110);
/// Phase marker colour (run start, cooldown, teardown).
const PHASE_COLOR: RGBColor = RGBColor(31, 119, 180);

/// One named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// `(seconds, value)`; a None value breaks the line (node did not answer).
    pub points: Vec<(f64, Option<f64>)>,
}

fn draw_err<E: Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("cannot draw the {what} plot: {e}")
}

/// A plot with nothing to draw: its title and why, no axes (empty axes read as "zero").
pub fn empty_plot(title: &str, why: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let e = draw_err(title);
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT / 3)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        root.draw(&Text::new(
            title.to_owned(),
            (12, 12),
            ("sans-serif", 18).into_font(),
        ))
        .map_err(&e)?;
        root.draw(&Text::new(
            format!("no data: {why}"),
            (12, 50),
            ("sans-serif", 14).into_font().color(&RGBColor(90, 90, 90)),
        ))
        .map_err(&e)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// A line plot over run time with `spans` shaded and `markers` as vertical lines; with no
/// value at all, an [`empty_plot`] saying so.
pub fn time_plot(
    title: &str,
    y_desc: &str,
    series: &[Series],
    spans: &[Span],
    markers: &[(String, f64)],
    x_max: f64,
) -> Result<String, String> {
    if series
        .iter()
        .all(|s| s.points.iter().all(|p| p.1.is_none()))
    {
        return empty_plot(title, "no sample was recorded");
    }
    let x_max = if x_max > 0.0 { x_max } else { 1.0 };
    let y_top = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let y_max = (y_top * 1.12).max(1.0);
    let mut svg = String::new();
    {
        let e = draw_err(title);
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(&e)?;
        chart
            .configure_mesh()
            .x_desc("time since deploy (s)")
            .y_desc(y_desc)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(&e)?;
        for span in spans {
            let color = match span.kind {
                SpanKind::Fault => FAULT_COLOR,
                SpanKind::NodeDown => DOWN_COLOR,
            };
            let start = span.start_ms as f64 / 1000.0;
            let end = span
                .end_ms
                .map_or(x_max, |e| e as f64 / 1000.0)
                .max(start + 0.05);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(start, 0.0), (end.min(x_max), y_max)],
                    color.mix(0.16).filled(),
                )))
                .map_err(&e)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    span.label.clone(),
                    (start, y_max * 0.97),
                    ("sans-serif", 11).into_font().color(&color),
                )))
                .map_err(&e)?;
        }
        for (label, x) in markers {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(*x, 0.0), (*x, y_max)],
                    PHASE_COLOR.mix(0.5).stroke_width(1),
                )))
                .map_err(&e)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (*x, y_max * 0.06),
                    ("sans-serif", 11).into_font().color(&PHASE_COLOR),
                )))
                .map_err(&e)?;
        }
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let mut first = true;
            for segment in segments(&s.points) {
                let drawn = chart
                    .draw_series(LineSeries::new(segment, color.stroke_width(2)))
                    .map_err(&e)?;
                if first {
                    drawn.label(s.name.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                    first = false;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(&e)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// Contiguous runs of known values.
fn segments(points: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for &(x, y) in points {
        match y {
            Some(y) => cur.push((x, y)),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A histogram of latencies (ms) with `bins` equal-width bins.
pub fn histogram(title: &str, values_ms: &[u64], bins: usize) -> Result<String, String> {
    let bins = bins.max(1);
    let max = values_ms.iter().copied().max().unwrap_or(0) as f64;
    let width = (max / bins as f64).max(1.0);
    let mut counts = vec![0u64; bins];
    for &v in values_ms {
        let b = ((v as f64 / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let bars: Vec<(String, f64, f64, u64)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (String::new(), i as f64 * width, (i + 1) as f64 * width, c))
        .collect();
    bar_plot(title, "inclusion latency (ms)", "transactions", &bars)
}

/// The latency summary (median, p95, max) as three bars, for runs without per-transaction samples.
pub fn summary_bars(title: &str, median: u64, p95: u64, max: u64) -> Result<String, String> {
    let bars = vec![
        (format!("median {median} ms"), 0.0, 1.0, median),
        (format!("p95 {p95} ms"), 1.5, 2.5, p95),
        (format!("max {max} ms"), 3.0, 4.0, max),
    ];
    bar_plot(title, "", "ms", &bars)
}

/// Bars `(label, x0, x1, height)`.
fn bar_plot(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    bars: &[(String, f64, f64, u64)],
) -> Result<String, String> {
    let x_max = bars.iter().map(|b| b.2).fold(1.0_f64, f64::max);
    let y_max = (bars.iter().map(|b| b.3).max().unwrap_or(0) as f64 * 1.15).max(1.0);
    let mut svg = String::new();
    {
        let e = draw_err(title);
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(&e)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(&e)?;
        let color = Palette99::pick(0).to_rgba();
        chart
            .draw_series(bars.iter().map(|(_, x0, x1, h)| {
                Rectangle::new([(*x0, 0.0), (*x1, *h as f64)], color.mix(0.75).filled())
            }))
            .map_err(&e)?;
        chart
            .draw_series(
                bars.iter()
                    .filter(|b| !b.0.is_empty())
                    .map(|(l, x0, _, h)| {
                        Text::new(
                            l.clone(),
                            (*x0, *h as f64 + y_max * 0.03),
                            ("sans-serif", 12),
                        )
                    }),
            )
            .map_err(&e)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// The plots of one run, in report order: `(id, svg)`.
pub fn run_plots(run: &RecordedRun) -> Result<Vec<(&'static str, String)>, String> {
    let x_max = run.end_ms() as f64 / 1000.0 + 0.5;
    let n = run.node_count();
    let secs = |ms: u64| ms as f64 / 1000.0;
    let mut markers = Vec::new();
    for (label, at) in [
        ("run", run.phases.run_started_ms),
        ("cooldown", run.phases.cooldown_started_ms),
        ("teardown", run.phases.teardown_started_ms),
    ] {
        if let Some(at) = at {
            markers.push((label.to_owned(), secs(at)));
        }
    }
    let per_node =
        |value: &dyn Fn(usize, usize) -> Option<f64>, len: usize, at: &dyn Fn(usize) -> u64| {
            (0..n)
                .map(|node| Series {
                    name: format!("node-{node}"),
                    points: (0..len).map(|k| (secs(at(k)), value(k, node))).collect(),
                })
                .collect::<Vec<_>>()
        };
    let samples = &run.node_samples;
    let heights = if samples
        .iter()
        .any(|s| s.heights.iter().any(Option::is_some))
    {
        per_node(
            &|k, node| {
                samples[k]
                    .heights
                    .get(node)
                    .copied()
                    .flatten()
                    .map(|h| h as f64)
            },
            samples.len(),
            &|k| samples[k].at_ms,
        )
    } else {
        let p = &run.progress;
        per_node(
            &|k, node| p[k].heights.get(node).copied().flatten().map(|h| h as f64),
            p.len(),
            &|k| p[k].at_ms,
        )
    };
    let peers = per_node(
        &|k, node| {
            samples[k]
                .peers
                .get(node)
                .copied()
                .flatten()
                .map(|h| h as f64)
        },
        samples.len(),
        &|k| samples[k].at_ms,
    );
    let txs = vec![
        Series {
            name: "submitted".to_owned(),
            points: run
                .progress
                .iter()
                .map(|p| (secs(p.at_ms), Some(p.txs_submitted as f64)))
                .collect(),
        },
        Series {
            name: "included".to_owned(),
            points: run
                .progress
                .iter()
                .map(|p| (secs(p.at_ms), Some(p.txs_included as f64)))
                .collect(),
        },
    ];
    let latency = if !run.inclusion_latencies_ms.is_empty() {
        histogram(
            "inclusion latency distribution",
            &run.inclusion_latencies_ms,
            20,
        )?
    } else {
        let field = |k: &str| {
            run.inclusion_latency
                .as_ref()
                .and_then(|v| v.get(k))
                .and_then(serde_json::Value::as_u64)
        };
        match (field("median_ms"), field("p95_ms"), field("max_ms")) {
            (Some(m), Some(p), Some(x)) => summary_bars("inclusion latency (summary)", m, p, x)?,
            _ => empty_plot(
                "inclusion latency distribution",
                "no transaction was included",
            )?,
        }
    };
    // which nodes share a tip: each node's line sits at the lowest node on the same tip, so a
    // partition shows as lines apart that meet again at the heal (or never)
    let tip_groups = per_node(
        &|k, node| {
            let tips = &samples[k].tips;
            let mine = tips.get(node)?.as_ref()?;
            tips.iter()
                .position(|t| t.as_ref() == Some(mine))
                .map(|j| j as f64)
        },
        samples.len(),
        &|k| samples[k].at_ms,
    );
    let recovery = recovery_plot(run)?;
    Ok(vec![
        (
            "heights",
            time_plot(
                "height per node",
                "height",
                &heights,
                &run.spans,
                &markers,
                x_max,
            )?,
        ),
        (
            "txs",
            time_plot(
                "transactions submitted vs included",
                "transactions",
                &txs,
                &run.spans,
                &markers,
                x_max,
            )?,
        ),
        ("latency", latency),
        (
            "peers",
            time_plot(
                "peers per node",
                "peers",
                &peers,
                &run.spans,
                &markers,
                x_max,
            )?,
        ),
        (
            "forks",
            time_plot(
                "nodes sharing a tip (each node at the lowest node on its tip)",
                "lowest node on the same tip",
                &tip_groups,
                &run.spans,
                &markers,
                x_max,
            )?,
        ),
        ("recovery", recovery),
    ])
}

/// One bar per revert (to convergence) and per restart (to catch-up), from the run report's
/// `recovery`; an [`empty_plot`] when there was neither.
fn recovery_plot(run: &RecordedRun) -> Result<String, String> {
    let title = "recovery: revert to convergence, restart to catch-up";
    let rec = run.report.as_ref().and_then(|r| r.get("recovery"));
    let list = |key: &str| {
        rec.and_then(|r| r.get(key))
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut bars = Vec::new();
    let mut x = 0.0;
    for h in list("heals") {
        let fault = h.get("fault").and_then(|f| f.as_str()).unwrap_or("fault");
        let label = match h
            .get("converged_after_ms")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) => format!("{fault}: {v} ms"),
            None => format!("{fault}: not converged"),
        };
        let v = h
            .get("converged_after_ms")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        bars.push((label, x, x + 1.0, v));
        x += 1.5;
    }
    for c in list("catch_ups") {
        let node = c
            .get("node")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let action = c
            .get("action")
            .and_then(|a| a.as_str())
            .unwrap_or("restart");
        let v = c
            .get("caught_up_after_ms")
            .and_then(serde_json::Value::as_u64);
        let label = match v {
            Some(v) => format!("{action} node-{node}: {v} ms"),
            None => format!("{action} node-{node}: not caught up"),
        };
        bars.push((label, x, x + 1.0, v.unwrap_or(0)));
        x += 1.5;
    }
    if bars.is_empty() {
        return empty_plot(title, "no fault was reverted and no node started again");
    }
    bar_plot(title, "", "ms", &bars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_split_lines() {
        let s = segments(&[
            (0.0, Some(1.0)),
            (1.0, None),
            (2.0, Some(2.0)),
            (3.0, Some(3.0)),
        ]);
        assert_eq!(s, vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 3.0)]]);
    }

    #[test]
    fn a_plot_without_data_says_so_and_draws_no_axes() {
        let empty = Series {
            name: "node-0".into(),
            points: vec![(0.0, None), (1.0, None)],
        };
        let svg = time_plot("peers per node", "peers", &[empty], &[], &[], 5.0).unwrap();
        assert!(svg.contains("no data: no sample was recorded"), "{svg}");
        assert!(!svg.contains("time since deploy"), "no axes: {svg}");
        let svg = recovery_plot(&RecordedRun::default()).unwrap();
        assert!(
            svg.contains("no data: no fault was reverted and no node started again"),
            "{svg}"
        );
    }

    #[test]
    fn forks_and_recovery_are_drawn() {
        let tip = |t: &str| Some(t.to_owned());
        let run = RecordedRun {
            report: Some(serde_json::json!({"recovery": {
                "heals": [{"fault": "partition [[0], [1]]", "converged_after_ms": 350}],
                "catch_ups": [{"node": 1, "action": "restart", "caught_up_after_ms": null}],
            }})),
            node_samples: vec![
                crate::report::recorder::NodeSample {
                    at_ms: 0,
                    heights: vec![Some(1), Some(1)],
                    peers: vec![Some(1), Some(1)],
                    tips: vec![tip("aa"), tip("aa")],
                },
                crate::report::recorder::NodeSample {
                    at_ms: 1000,
                    heights: vec![Some(2), Some(3)],
                    peers: vec![Some(0), Some(0)],
                    tips: vec![tip("bb"), tip("cc")],
                },
            ],
            ..Default::default()
        };
        let plots = run_plots(&run).unwrap();
        let get = |id: &str| &plots.iter().find(|(i, _)| *i == id).unwrap().1;
        assert!(get("forks").contains("lowest node on the same tip"));
        let rec = get("recovery");
        assert!(rec.contains("partition [[0], [1]]: 350 ms"), "{rec}");
        assert!(rec.contains("restart node-1: not caught up"), "{rec}");
        assert!(get("latency").contains("no data: no transaction was included"));
    }

    #[test]
    fn histogram_counts_every_value() {
        let svg = histogram("h", &[1, 2, 3, 100], 4).expect("draws");
        assert!(svg.starts_with("<svg"), "{svg}");
    }
}
