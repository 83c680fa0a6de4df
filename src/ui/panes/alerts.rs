//! Alerts: what fires now (worst priority first) — WARN, CRIT, NO DATA or source ERROR —
//! for how long, whether someone acknowledged it, and whether it is flapping, under a
//! maintenance silence or held back by storm control; then pending ones (bad, waiting for
//! their rule's `for`), then what resolved lately. `ui.selected` indexes this list (active
//! alerts first, then resolved ones), so `a` acknowledges `state.alerts.active[selected]`.

use super::common::{
    Cell, Column, Row, Titles, draw_block, fit_columns, format_span, inner, lines, one_line, table,
};
use super::{Cx, Outcome, Pane};
use crate::model::figure::Severity;
use crate::state::RecordStatus;
use crate::state::alerts::{Alert, AlertState};
use crate::ui::keys::{Action, Binding, Help, When, ch};
use crate::ui::{PaneContext, PaneId};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::{Frame, layout::Rect};

// The figure's name has the room first: the severity shrinks to its symbol and a long
// value (a source error's reason) is cut before the name is; a name that is still too
// long loses its middle, so the subject (its start) and the figure (its end) both show.
const COLUMNS: [Column; 8] = [
    Column::left("", 1, 9, 0).clipped().grow(5),
    Column::left("pri", 2, 2, 1),
    Column::left("figure", 12, 40, 0)
        .grow(0)
        .fill()
        .cut_middle(),
    Column::right("value", 5, 24, 2).grow(1),
    Column::right("for", 3, 16, 3).grow(2),
    Column::left("ack", 3, 3, 4),
    Column::left("state", 5, 14, 5).grow(6),
    Column::left("id", 8, 40, 9),
];
const NAME_COLUMN: usize = 2;
const VALUE_COLUMN: usize = 3;
const ACK_COLUMN: usize = 5;
const STATE_COLUMN: usize = 6;
const ID_COLUMN: usize = 7;
/// A value this short (a number with its unit) is never cut; a longer one (a reason) is
/// cut before the name.
const SHORT_VALUE: u16 = 10;

/// The columns for these rows, each with its index in [`COLUMNS`]: zoomed, the id too;
/// the name and id as wide as the longest one when there is room (zoomed, or a wide
/// pane); the ack and state columns only when some row has something in them.
fn columns(rows: &[Row], zoomed: bool) -> Vec<(usize, Column)> {
    let widest = |i: usize, within: u16| {
        rows.iter()
            .map(|r| super::common::width(&r.cells[i].text).min(usize::from(u16::MAX)) as u16)
            .filter(|w| *w <= within)
            .max()
            .unwrap_or(0)
    };
    let shown = if zoomed { COLUMNS.len() } else { 7 };
    COLUMNS[..shown]
        .iter()
        .cloned()
        .enumerate()
        .filter(|(i, _)| ![ACK_COLUMN, STATE_COLUMN].contains(i) || widest(*i, u16::MAX) > 0)
        .map(|(i, mut column)| {
            match i {
                NAME_COLUMN | ID_COLUMN => column.max = column.max.max(widest(i, u16::MAX)),
                VALUE_COLUMN => column.min = column.min.max(widest(i, SHORT_VALUE)),
                _ => {}
            }
            (i, column)
        })
        .collect()
}

/// The pane's part of the key table.
pub(crate) const KEYS: &[Binding] = &[Binding::new(
    &[ch('a')],
    Action::Acknowledge,
    When::Screen,
    Help::Row(&["acknowledge the selected alert in the Alerts pane"]),
)
.footer(6, "ack")];

pub(crate) const PANE: Pane = Pane {
    keys: KEYS,
    handle,
    ..Pane::new(PaneId::Alerts, render)
};

/// `a` (and `:ack`): acknowledges the selected alert; `:unack` takes that back. Both act
/// on the live alert (while paused, the screen's copy may be behind).
fn handle(action: &Action, cx: &mut Cx) -> Outcome {
    let (verb, ack) = match action {
        Action::Acknowledge => ("acknowledge", true),
        Action::Unacknowledge => ("unacknowledge", false),
        _ => return Outcome::Pass,
    };
    let ui = &mut *cx.ui;
    if ui.focus != PaneId::Alerts {
        ui.flash = Some(format!(
            "focus {} and select an alert to {verb} it",
            super::title_with_number(ui, PaneId::Alerts)
        ));
        return Outcome::Done;
    }
    let active = &cx.live.alerts.active;
    let index = ui.selected.min(active.len().saturating_sub(1));
    if let RecordStatus::Viewer { holder, .. } = &cx.live.record {
        ui.flash = Some(format!(
            "viewer: {verb} in the watchpost that holds the record{}",
            holder.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ));
        return Outcome::Done;
    }
    let Some(alert) = active.get(index) else {
        ui.flash = Some(format!("no active alert to {verb}"));
        return Outcome::Done;
    };
    let id = crate::model::sanitize::sanitize(&alert.id);
    match (ack, alert.acknowledged) {
        (true, _) => {
            ui.flash = Some(format!("acknowledged {id}"));
            Outcome::Acknowledge(alert.id.clone())
        }
        (false, true) => {
            ui.flash = Some(format!("unacknowledged {id}"));
            Outcome::Unacknowledge(alert.id.clone())
        }
        (false, false) => {
            ui.flash = Some(format!("{id} is not acknowledged"));
            Outcome::Done
        }
    }
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let body = inner(area);
    let theme = ctx.theme;
    let book = &ctx.state.alerts;
    let mut titles = Titles::default();
    let active = book.active.len();
    let unacked = book.unacknowledged();
    let pending = book.pending();
    let firing = active - pending;
    if firing > 0 {
        let worst = book
            .active
            .iter()
            .filter(|a| a.state != AlertState::Pending)
            .map(|a| a.severity)
            .fold(Severity::Ok, Severity::worst);
        titles.top.push(Span::styled(
            format!("{} {firing} active", worst.symbol()),
            theme.severity(worst),
        ));
        if unacked > 0 {
            titles.top.push(Span::styled(" · ", theme.muted));
            titles
                .top
                .push(Span::styled(format!("{unacked} new"), theme.warn));
        }
    }
    if pending > 0 {
        if !titles.top.is_empty() {
            titles.top.push(Span::styled(" · ", theme.muted));
        }
        titles
            .top
            .push(Span::styled(format!("{pending} pending"), theme.muted));
    }

    let mut rest = body;
    if firing == 0 {
        let (text, style) = if ctx.state.figures.is_empty() {
            ("no figures yet".to_string(), theme.muted)
        } else {
            (
                format!("{} no alerts — all figures OK", Severity::Ok.symbol()),
                theme.ok,
            )
        };
        let [first, below] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(body);
        lines(frame, first, vec![Line::from(Span::styled(text, style))]);
        rest = below;
    }
    // `ui.selected` runs over active alerts, then resolved ones.
    let total = active + book.resolved.len();
    let selected = ctx
        .focused
        .then_some(ctx.ui.selected.min(total.saturating_sub(1)));
    let mut hidden = 0;
    if active > 0 {
        let all_rows: Vec<Row> = book.active.iter().map(|a| row(ctx, a)).collect();
        let (kept, columns): (Vec<usize>, Vec<Column>) =
            columns(&all_rows, ctx.zoomed).into_iter().unzip();
        let mut rows: Vec<Row> = all_rows
            .into_iter()
            .map(|row| Row {
                cells: kept.iter().map(|&i| row.cells[i].clone()).collect(),
                style: row.style,
            })
            .collect();
        // No room for the ack or state column: say it in front of the name instead.
        let layout = fit_columns(&columns, &rows, rest.width, rest.height >= 3);
        let shown = |column: usize| layout.iter().any(|(i, _)| kept[*i] == column);
        let (ack_shown, state_shown) = (shown(ACK_COLUMN), shown(STATE_COLUMN));
        let name_at = kept.iter().position(|&i| i == NAME_COLUMN).unwrap_or(0);
        for (row, alert) in rows.iter_mut().zip(&book.active) {
            let mut prefix = String::new();
            if !state_shown && let Some(word) = state_word(alert) {
                prefix.push_str(&word);
                prefix.push(' ');
            }
            if !ack_shown && alert.acknowledged {
                prefix.push_str("ACK ");
            }
            if !prefix.is_empty() {
                let name = &mut row.cells[name_at];
                name.text = format!("{prefix}{}", name.text);
            }
        }
        let header = u16::from(rest.height >= 3);
        let [table_area, below] = Layout::vertical([
            Constraint::Length((active as u16).saturating_add(header)),
            Constraint::Min(0),
        ])
        .areas(rest);
        let view = table(
            frame,
            table_area,
            theme,
            &columns,
            &rows,
            selected.filter(|s| *s < active),
        );
        hidden += view.hidden_above + view.hidden_below;
        rest = below;
    }
    // Resolved lately: one muted line each, newest first, as room allows.
    let resolved: Vec<Line<'static>> = book
        .resolved
        .iter()
        .enumerate()
        .take(rest.height as usize)
        .map(|(j, alert)| {
            let line = resolved_line(ctx, alert);
            if selected == Some(active + j) {
                let pad = (rest.width as usize).saturating_sub(line.width());
                let mut line = line;
                line.push_span(Span::raw(" ".repeat(pad)));
                line.patch_style(theme.selection)
            } else {
                line
            }
        })
        .collect();
    hidden += book.resolved.len().saturating_sub(resolved.len());
    lines(frame, rest, resolved);
    if hidden > 0 {
        titles.bottom = vec![Span::styled(format!("+{hidden} more"), theme.muted)];
    }
    if ctx.focused && firing > 0 {
        titles.bottom_right = vec![Span::styled("a: ack", theme.muted)];
    }
    draw_block(frame, area, ctx, PaneId::Alerts, &[], titles);
}

/// "✓ ok 6m ago: tmws-api health latency (was WARN for 1m)".
fn resolved_line(ctx: &PaneContext, alert: &Alert) -> Line<'static> {
    let theme = ctx.theme;
    let resolved = alert.resolved_at.unwrap_or(ctx.now);
    let mut spans = vec![
        Span::styled(
            format!(
                "{} ok {} ago: ",
                Severity::Ok.symbol(),
                format_span(ctx.now - resolved)
            ),
            theme.ok,
        ),
        Span::styled(one_line(&alert.name), theme.muted),
        Span::styled(
            format!(
                " (was {} {} for {})",
                alert.priority.label(),
                alert.condition.label(),
                format_span(resolved - alert.since)
            ),
            theme.muted,
        ),
    ];
    if alert.acknowledged {
        spans.push(Span::styled(" ACK", theme.muted));
    }
    Line::from(spans)
}

/// "pending", "flapping", "silenced", "held 3" (storm control), or nothing when firing.
fn state_word(alert: &Alert) -> Option<String> {
    let mut words = Vec::new();
    match alert.state {
        AlertState::Pending => words.push("pending".to_string()),
        AlertState::Flapping if alert.ok_now => words.push("flapping, ok now".to_string()),
        AlertState::Flapping => words.push("flapping".to_string()),
        AlertState::Firing => {}
    }
    if alert.silenced.is_some() {
        words.push("silenced".into());
    }
    if alert.held_back > 0 {
        words.push(format!("held {}", alert.held_back));
    }
    (!words.is_empty()).then(|| words.join(" "))
}

fn row(ctx: &PaneContext, alert: &Alert) -> Row {
    let theme = ctx.theme;
    // Pending and silenced alerts do not count yet: muted, so the eye goes to what does.
    let quiet = alert.state == AlertState::Pending || alert.silenced.is_some();
    let severity_style = if quiet {
        theme.muted
    } else {
        theme.severity(alert.severity)
    };
    let label = format!("{} {}", alert.severity.symbol(), alert.condition.label());
    Row {
        cells: vec![
            Cell::new(label, severity_style),
            Cell::new(
                alert.priority.label(),
                if alert.acknowledged || quiet {
                    theme.muted
                } else {
                    theme.title
                },
            ),
            Cell::new(one_line(&alert.name), theme.text),
            Cell::new(one_line(&alert.reason), severity_style),
            Cell::new(format_span(ctx.now - alert.since), theme.muted),
            if alert.acknowledged {
                Cell::new("ACK", theme.muted)
            } else {
                Cell::new("", theme.muted)
            },
            Cell::new(state_word(alert).unwrap_or_default(), theme.muted),
            Cell::new(one_line(&alert.id), theme.muted),
        ],
        style: Style::default(),
    }
}

#[cfg(test)]
mod tests {
    use crate::model::figure::Reading;
    use crate::model::rule::{Rule, Threshold};
    use crate::model::update::{SourceHealth, Update};
    use crate::state::AppState;
    use crate::ui::test_support::*;
    use crate::ui::{self, PaneId, UiState};
    use chrono::Duration;
    use ratatui::layout::Rect;
    use ratatui::style::Modifier;

    #[test]
    fn alerts_states() {
        insta::assert_snapshot!(states_sheet(PaneId::Alerts));
        insta::assert_snapshot!(zoomed_sheet(PaneId::Alerts, 110, 14));
    }

    /// Alerts with long figure names, as a compose project's containers and a log metric
    /// give them, beside a source error whose reason is long.
    fn long_named_alerts() -> AppState {
        let mut state = deployment(Level::Crit);
        readings(
            &mut state,
            "warungin",
            vec![
                Reading::number(
                    "warungin.warungin-backend-worker-1.restarts",
                    "warungin-backend-worker-1 restarts",
                    4.0,
                    "",
                )
                .with_rule(Rule::warn_crit(
                    Threshold::above(0.0),
                    Threshold::above(2.0),
                )),
            ],
            now() - Duration::seconds(90),
        );
        readings(
            &mut state,
            "app",
            vec![
                Reading::number(
                    "app.checkout_latency_p95",
                    "app p95 of checkout latency_ms (5m)",
                    2842.0,
                    "ms",
                )
                .with_rule(pct_rule(1000.0, 2000.0)),
            ],
            now() - Duration::seconds(30),
        );
        state.apply(
            Update::Health {
                source: "prod-metrics".into(),
                health: SourceHealth::Error {
                    message: "GET http://127.0.0.1:9090/api/v1/query: connection refused".into(),
                    retry_in_secs: Some(4),
                },
            },
            now() - Duration::seconds(20),
        );
        state
    }

    /// At 120 columns the Alerts pane is 48 wide: a figure's name keeps its room before the
    /// value column grows (a long value is cut first), and zoomed the whole name shows.
    #[test]
    fn alert_names_stay_readable_at_120_columns() {
        let state = long_named_alerts();
        let theme = theme();
        let ui = UiState::default();
        let (_, rect) =
            ui::overview_layout(Rect::new(0, 1, 120, 38), ui::panes::DEMO_OVERVIEW, &state)
                .into_iter()
                .find(|(p, _)| *p == PaneId::Alerts)
                .unwrap();
        let size = (rect.width, rect.height);
        let overview = draw_pane(PaneId::Alerts, &state, &ui, &theme, size, &PLAIN);
        let zoomed = draw_pane(PaneId::Alerts, &state, &ui, &theme, (120, 18), &ZOOMED);
        let screen = text(&overview);
        // Names that fit are whole; numbers are never cut.
        for whole in [
            "tmws-api health latency",
            "RBAC deny rate 1h",
            "2842 ms",
            "2400 ms",
        ] {
            assert!(screen.contains(whole), "{whole}\n{screen}");
        }
        // Longer names keep both ends: what (the subject) and which figure.
        for name in [
            "warungin-backend-worker-1 restarts",
            "app p95 of checkout latency_ms (5m)",
            "license validation failures 1h",
            "expired licenses not revoked",
        ] {
            let (head, tail) = (&name[..10], &name[name.len() - 8..]);
            assert!(
                screen.lines().any(|l| l.contains(name)
                    || (l.contains(head) && l.contains('…') && l.contains(tail))),
                "{name}\n{screen}"
            );
            assert!(find(&zoomed, name).is_some(), "{name}\n{}", text(&zoomed));
        }
        let mut out = format!("── overview at 120x40: Alerts {}x{}\n", size.0, size.1);
        out.push_str(&text(&overview));
        out.push_str("── zoomed 120x18\n");
        out.push_str(&text(&zoomed));
        insta::assert_snapshot!(out);
    }

    #[test]
    fn selected_alert_row_is_reversed() {
        let theme = theme();
        let state = deployment(Level::Crit);
        assert!(state.alerts.active.len() >= 3);
        let ui = UiState {
            selected: 1,
            ..UiState::default()
        };
        let focused = Opts {
            focused: true,
            zoomed: false,
        };
        let buffer = draw_pane(PaneId::Alerts, &state, &ui, &theme, (60, 12), &focused);
        let second = &state.alerts.active[1].name;
        let (_, y) = find(&buffer, second).expect("second alert on screen");
        for x in 1..59 {
            assert!(
                buffer[(x, y)].modifier.contains(Modifier::REVERSED),
                "cell {x} of the selected row is not reversed"
            );
        }
        let first = &state.alerts.active[0].name;
        let (_, y0) = find(&buffer, first).unwrap();
        assert!(!buffer[(2, y0)].modifier.contains(Modifier::REVERSED));

        // Unfocused: no selection shown.
        let buffer = draw_pane(PaneId::Alerts, &state, &ui, &theme, (60, 12), &PLAIN);
        let (_, y) = find(&buffer, second).unwrap();
        assert!(!buffer[(2, y)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn alerts_list_the_worst_first_with_priority() {
        let state = deployment(Level::Crit);
        let buffer = draw_pane(
            PaneId::Alerts,
            &state,
            &UiState::default(),
            &theme(),
            (70, 14),
            &PLAIN,
        );
        let screen = text(&buffer);
        let p0 = find(&buffer, "P0").expect("a P0 alert").1;
        let p2 = find(&buffer, "P2").expect("a P2 alert").1;
        assert!(p0 < p2, "{screen}");
        assert!(screen.contains("ACK"), "{screen}");
        assert!(screen.contains("✖ CRIT"), "{screen}");
    }

    #[test]
    fn resolved_alerts_follow_the_active_ones_in_the_selection() {
        let state = deployment(Level::Ok);
        assert!(state.alerts.active.is_empty());
        assert_eq!(state.alerts.resolved.len(), 1);
        let ui = UiState {
            selected: 0,
            ..UiState::default()
        };
        let focused = Opts {
            focused: true,
            zoomed: false,
        };
        let buffer = draw_pane(PaneId::Alerts, &state, &ui, &theme(), (60, 6), &focused);
        let screen = text(&buffer);
        assert!(screen.contains("no alerts — all figures OK"), "{screen}");
        let (x, y) = find(&buffer, "ok 6m ago").expect("resolved alert listed");
        assert!(
            buffer[(x, y)].modifier.contains(Modifier::REVERSED),
            "{screen}"
        );
        let (x, y) = find(&buffer, "no alerts").unwrap();
        assert_eq!(Some(buffer[(x, y)].fg), theme().ok.fg);
    }
}
