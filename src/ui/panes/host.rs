//! Host: CPU, memory and disk against the runbooks' thresholds (CPU 70/85, memory and
//! disk 80/90), the load averages and the CPU history. Zoomed: every disk.

use super::Pane;
use super::common::{
    Titles, bar, compact_bytes, draw_block, format_span, inner, lines, one_line, sparkline,
};
use crate::model::figure::Severity;
use crate::model::rule::{Comparison, Rule, Threshold};
use crate::model::update::HostSnapshot;
use crate::state::FigureState;
use crate::ui::theme::Theme;
use crate::ui::{PaneContext, PaneId};
use ratatui::text::{Line, Span};
use ratatui::{Frame, layout::Rect};

/// The runbook thresholds, used when no rule is configured for the figure.
const CPU_LIMITS: (f64, f64) = (70.0, 85.0);
const MEM_LIMITS: (f64, f64) = (80.0, 90.0);
const DISK_LIMITS: (f64, f64) = (80.0, 90.0);

pub(crate) const PANE: Pane = Pane {
    height,
    ..Pane::new(PaneId::Host, render)
};

/// One host in detail (CPU, memory, disk, load, the CPU's sparkline), or a line a host.
fn height(state: &crate::state::AppState) -> Option<u16> {
    let hosts = state.sources_of(PaneId::Host).len().max(state.hosts.len());
    let lines = if hosts <= 1 { 5 } else { hosts };
    Some((2 + lines).min(usize::from(u16::MAX)) as u16)
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let sources = ctx.state.sources_of(PaneId::Host);
    let body = inner(area);
    let titles = Titles::default();
    let present: Vec<&String> = sources
        .iter()
        .filter(|s| {
            ctx.state.hosts.contains_key(*s) || ctx.state.figure(&format!("{s}.cpu_pct")).is_some()
        })
        .collect();
    if present.is_empty() {
        frame.render_widget(ctx.placeholder(sources, "system"), body);
        draw_block(frame, area, ctx, PaneId::Host, sources, titles);
        return;
    }
    let width = body.width as usize;
    let mut out = Vec::new();
    if present.len() == 1 && !ctx.zoomed {
        out = detailed(ctx, present[0], width);
    } else if ctx.zoomed {
        for (i, source) in present.iter().enumerate() {
            if i > 0 {
                out.push(Line::default());
            }
            out.extend(detailed(ctx, source, width));
        }
    } else {
        for source in &present {
            out.push(compact(ctx, source));
        }
    }
    lines(frame, body, out);
    draw_block(frame, area, ctx, PaneId::Host, sources, titles);
}

/// A gauge's reading: the percentage, its severity and the thresholds it is judged against.
struct Gauge {
    pct: Option<f64>,
    severity: Severity,
    limits: (f64, f64),
    error: Option<String>,
}

/// The limits a rule sets for "higher is worse" figures, or the runbook's.
fn limits(ctx: &PaneContext, id: &str, default: (f64, f64)) -> (f64, f64) {
    let above = |t: Option<Threshold>| {
        t.filter(|t| matches!(t.op, Comparison::Greater | Comparison::GreaterOrEqual))
            .map(|t| t.limit)
    };
    match ctx.state.rules.get(id) {
        Some(rule) => (
            above(rule.warn).unwrap_or(default.0),
            above(rule.crit).unwrap_or(default.1),
        ),
        None => default,
    }
}

fn gauge(ctx: &PaneContext, id: &str, default: (f64, f64), fallback: Option<f64>) -> Gauge {
    let limits = limits(ctx, id, default);
    let figure: Option<&FigureState> = ctx.state.figure(id);
    match figure {
        Some(f) if f.figure.error.is_some() => Gauge {
            pct: None,
            severity: Severity::Unknown,
            limits,
            error: f.figure.error.as_deref().map(one_line),
        },
        Some(f) => Gauge {
            pct: f.figure.value.as_f64(),
            severity: f.figure.severity,
            limits,
            error: None,
        },
        // No figure (yet): judge the snapshot against the same thresholds.
        None => judged(limits, fallback),
    }
}

/// A percentage judged against warn/crit limits ("above 80 warns, above 90 is critical").
fn judged(limits: (f64, f64), pct: Option<f64>) -> Gauge {
    let rule = Rule::warn_crit(Threshold::above(limits.0), Threshold::above(limits.1));
    Gauge {
        pct,
        severity: pct.map_or(Severity::Unknown, |v| {
            rule.judge(&crate::model::figure::Value::Number(v))
        }),
        limits,
        error: None,
    }
}

/// How the gauges of one host are laid out: every bar the same length, the extras
/// (memory used/total, mount point) in a column after the values.
struct Bars {
    bar: usize,
    extra: usize,
    compact: bool,
}

impl Bars {
    /// " 100.0% ✖" after each bar.
    const VALUE: usize = 9;
    const LABEL: usize = 5;

    fn for_width(width: usize, extras: &[&str]) -> Bars {
        // Each extra is drawn after a space.
        let extra = extras
            .iter()
            .filter(|e| !e.is_empty())
            .map(|e| super::common::width(e) + 1)
            .max()
            .unwrap_or(0);
        let fixed = Bars::LABEL + Bars::VALUE;
        if width >= fixed + extra + 10 {
            Bars {
                bar: (width - fixed - extra).min(60),
                extra,
                compact: false,
            }
        } else if width >= fixed + 4 {
            Bars {
                bar: width - fixed,
                extra: 0,
                compact: false,
            }
        } else {
            Bars {
                bar: 0,
                extra: 0,
                compact: true,
            }
        }
    }

    fn line(&self, theme: &Theme, label: &str, g: &Gauge, extra: &str) -> Line<'static> {
        let style = theme.severity(g.severity);
        if self.compact {
            let text = match (g.pct, &g.error) {
                (Some(pct), None) => format!("{pct:.0}%{}", g.severity.symbol()),
                (_, Some(_)) => "?".into(),
                (None, None) => "—".into(),
            };
            return Line::from(vec![
                Span::styled(format!("{} ", label.trim()), theme.muted),
                Span::styled(text, style),
            ]);
        }
        let mut spans = vec![Span::styled(format!("{label:<5}"), theme.muted)];
        match (g.pct, &g.error) {
            (_, Some(error)) => spans.push(Span::styled(format!("? {error}"), theme.unknown)),
            (None, None) => spans.push(Span::styled("—", theme.muted)),
            (Some(pct), None) => {
                spans.extend(bar(theme, pct, self.bar, g.limits, style));
                spans.push(Span::styled(
                    format!(" {pct:>5.1}% {}", g.severity.symbol()),
                    style,
                ));
                if self.extra > 0 && !extra.is_empty() {
                    spans.push(Span::styled(format!(" {extra}"), theme.muted));
                }
            }
        }
        Line::from(spans)
    }
}

fn detailed(ctx: &PaneContext, source: &str, width: usize) -> Vec<Line<'static>> {
    let theme = ctx.theme;
    let snapshot: Option<&HostSnapshot> = ctx.state.hosts.get(source);
    let mut out = Vec::new();
    if ctx.zoomed {
        let mut head = vec![Span::styled(one_line(source), theme.title)];
        if let Some(s) = snapshot {
            if !s.hostname.is_empty() {
                head.push(Span::styled(
                    format!(" · {}", one_line(&s.hostname)),
                    theme.text,
                ));
            }
            let uptime =
                chrono::Duration::seconds(s.uptime_secs.min(i64::MAX as u64 / 1000) as i64);
            head.push(Span::styled(
                format!(" · {} cores · up {}", s.cores, format_span(uptime)),
                theme.muted,
            ));
        }
        out.push(Line::from(head));
    }
    let cpu = gauge(
        ctx,
        &format!("{source}.cpu_pct"),
        CPU_LIMITS,
        snapshot.map(|s| s.cpu_pct),
    );
    let mem_fallback = snapshot
        .filter(|s| s.mem_total_bytes > 0.0)
        .map(|s| 100.0 * s.mem_used_bytes / s.mem_total_bytes);
    let mem = gauge(ctx, &format!("{source}.mem_pct"), MEM_LIMITS, mem_fallback);
    let mem_extra = snapshot
        .filter(|s| s.mem_total_bytes > 0.0)
        .map(|s| {
            format!(
                "{}/{}",
                compact_bytes(s.mem_used_bytes),
                compact_bytes(s.mem_total_bytes)
            )
        })
        .unwrap_or_default();
    let fullest = snapshot.and_then(|s| {
        s.disks
            .iter()
            .max_by(|a, b| a.used_pct().total_cmp(&b.used_pct()))
    });
    let disk = gauge(
        ctx,
        &format!("{source}.disk_pct"),
        DISK_LIMITS,
        fullest.map(|d| d.used_pct()),
    );
    // The overview names the fullest disk; zoomed, every disk has its own row.
    let disk_extra = fullest
        .filter(|_| !ctx.zoomed)
        .map(|d| one_line(&d.mount))
        .unwrap_or_default();
    let disks: Vec<(Gauge, String)> = match snapshot {
        Some(s) if ctx.zoomed => s
            .disks
            .iter()
            .map(|d| {
                let extra = format!(
                    "{}/{} {}",
                    compact_bytes(d.used_bytes),
                    compact_bytes(d.total_bytes),
                    one_line(&d.mount)
                );
                (judged(disk.limits, Some(d.used_pct())), extra)
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut extras = vec![mem_extra.as_str(), disk_extra.as_str()];
    extras.extend(disks.iter().map(|(_, e)| e.as_str()));
    let bars = Bars::for_width(width, &extras);
    out.push(bars.line(theme, "CPU", &cpu, ""));
    out.push(bars.line(theme, "MEM", &mem, &mem_extra));
    out.push(bars.line(theme, "DISK", &disk, &disk_extra));
    for (g, extra) in &disks {
        out.push(bars.line(theme, " └", g, extra));
    }

    // Load averages; the 1-minute one carries the figure's severity.
    let load1 = ctx.state.figure(&format!("{source}.load1"));
    let load = snapshot.map(|s| s.load).or_else(|| {
        load1
            .and_then(|f| f.figure.value.as_f64())
            .map(|l| [l, f64::NAN, f64::NAN])
    });
    if let Some(load) = load {
        let sev = load1.map_or(Severity::Ok, |f| f.figure.severity);
        let fmt = |v: f64| {
            if v.is_finite() {
                format!("{v:.2}")
            } else {
                "—".into()
            }
        };
        let mut spans = vec![
            Span::styled("load ", theme.muted),
            Span::styled(fmt(load[0]), theme.severity(sev)),
        ];
        if sev != Severity::Ok {
            spans.push(Span::styled(sev.symbol(), theme.severity(sev)));
        }
        spans.push(Span::styled(
            format!(" {} {}", fmt(load[1]), fmt(load[2])),
            theme.text,
        ));
        if let Some(s) = snapshot.filter(|s| s.cores > 0) {
            spans.push(Span::styled(format!(" · {} cores", s.cores), theme.muted));
        }
        out.push(Line::from(spans));
    }

    // CPU history.
    if let Some(f) = ctx.state.figure(&format!("{source}.cpu_pct")) {
        let spark = sparkline(&f.history_values(), width.saturating_sub(5));
        if !spark.is_empty() {
            out.push(Line::from(vec![
                Span::styled("cpu  ", theme.muted),
                Span::styled(spark, theme.severity(f.figure.severity)),
            ]));
        }
    }
    if ctx.zoomed {
        out.push(Line::from(Span::styled(
            format!(
                "thresholds warn/crit: cpu {}/{} · mem {}/{} · disk {}/{} (┆ on the bars)",
                cpu.limits.0,
                cpu.limits.1,
                mem.limits.0,
                mem.limits.1,
                disk.limits.0,
                disk.limits.1
            ),
            theme.muted,
        )));
    }
    out
}

/// One line per host when several share the pane.
fn compact(ctx: &PaneContext, source: &str) -> Line<'static> {
    let theme = ctx.theme;
    let snapshot = ctx.state.hosts.get(source);
    let mut spans = vec![Span::styled(format!("{} ", one_line(source)), theme.title)];
    let mem_fallback = snapshot
        .filter(|s| s.mem_total_bytes > 0.0)
        .map(|s| 100.0 * s.mem_used_bytes / s.mem_total_bytes);
    let disk_fallback =
        snapshot.and_then(|s| s.disks.iter().map(|d| d.used_pct()).max_by(f64::total_cmp));
    let parts = [
        (
            "cpu",
            gauge(
                ctx,
                &format!("{source}.cpu_pct"),
                CPU_LIMITS,
                snapshot.map(|s| s.cpu_pct),
            ),
        ),
        (
            "mem",
            gauge(ctx, &format!("{source}.mem_pct"), MEM_LIMITS, mem_fallback),
        ),
        (
            "dsk",
            gauge(
                ctx,
                &format!("{source}.disk_pct"),
                DISK_LIMITS,
                disk_fallback,
            ),
        ),
    ];
    for (label, g) in parts {
        spans.push(Span::styled(format!("{label} "), theme.muted));
        let text = match g.pct {
            Some(p) => format!("{p:.0}%{} ", g.severity.symbol()),
            None => "? ".into(),
        };
        spans.push(Span::styled(text, theme.severity(g.severity)));
    }
    if let Some(s) = snapshot {
        spans.push(Span::styled(format!("ld {:.2}", s.load[0]), theme.text));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use crate::ui::PaneId;
    use crate::ui::test_support::*;

    #[test]
    fn host_states() {
        insta::assert_snapshot!(states_sheet(PaneId::Host));
        insta::assert_snapshot!(zoomed_sheet(PaneId::Host, 80, 14));
    }
}
