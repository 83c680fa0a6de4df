//! RBAC: permission checks and the deny rate over the last hour (seed 000 step 2), its
//! trend, the most denied operation and role (step 9) and the share of admin agents
//! (step 6). Zoomed or drilled down: the whole top-denied table.

use super::common::{
    Align, Cell, Column, Row, Titles, draw_block, figure_text, inner, judged_sparkline, lines,
    more_hint, one_line, table,
};
use super::{Cx, Pane};
use crate::model::catalog::{Fig, tmws};
use crate::model::update::Table;
use crate::state::FigureState;
use crate::ui::{PaneContext, PaneId};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::{Frame, layout::Rect};

/// The figures of the RBAC pane, from the first source that feeds it.
struct Figures<'a> {
    deny_pct: Option<&'a FigureState>,
    deny_pct_1m: Option<&'a FigureState>,
    checks: Option<&'a FigureState>,
    allow: Option<&'a FigureState>,
    deny: Option<&'a FigureState>,
    admin_pct: Option<&'a FigureState>,
    top_denied: Option<&'a Table>,
}

impl<'a> Figures<'a> {
    fn of(ctx: &PaneContext<'a>, source: &str) -> Figures<'a> {
        let state = ctx.state;
        let fig = |fig: Fig| state.figure(&fig.id(source));
        Figures {
            deny_pct: fig(tmws::RBAC_DENY_PCT_1H),
            deny_pct_1m: fig(tmws::RBAC_DENY_PCT_1M),
            checks: fig(tmws::RBAC_CHECKS_1H),
            allow: fig(tmws::RBAC_ALLOW_1H),
            deny: fig(tmws::RBAC_DENY_1H),
            admin_pct: fig(tmws::AGENTS_ADMIN_PCT),
            top_denied: state
                .tables
                .get(&format!("{source}.{}", tmws::TABLE_TOP_DENIED)),
        }
    }

    fn any(&self) -> bool {
        self.deny_pct.is_some()
            || self.checks.is_some()
            || self.allow.is_some()
            || self.deny.is_some()
            || self.top_denied.is_some()
    }
}

/// The pane's own view state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RbacView {
    /// The whole top-denied table (operation × role) in place of the summary: while the
    /// pane is zoomed.
    pub(crate) drilldown: bool,
}

pub(crate) const PANE: Pane = Pane {
    settle,
    height: |_| Some(SUMMARY_LINES + 2),
    ..Pane::new(PaneId::Rbac, render)
};

/// The summary's lines at most: the deny rate, the counts, the trend, the most denied
/// operation and the admin agents.
const SUMMARY_LINES: u16 = 5;

/// Drilled down while zoomed on this pane.
fn settle(cx: &mut Cx, _moved: bool) {
    cx.ui.views.rbac.drilldown = cx.ui.zoomed && cx.ui.focus == PaneId::Rbac;
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let sources = ctx.state.sources_of(PaneId::Rbac);
    let body = inner(area);
    let mut titles = Titles::default();
    let figures = sources.first().map(|s| Figures::of(ctx, s));
    let Some(figures) = figures.filter(Figures::any) else {
        frame.render_widget(ctx.placeholder(sources, "rbac"), body);
        draw_block(frame, area, ctx, PaneId::Rbac, sources, titles);
        return;
    };
    let theme = ctx.theme;
    // The drill-down belongs to the focused pane; elsewhere the pane shows its summary.
    let full_table = ctx.zoomed || (ctx.ui.views.rbac.drilldown && ctx.focused);
    let summary = summary_lines(ctx, &figures, body.width as usize, full_table);
    if !full_table {
        lines(frame, body, pick(summary, body.height as usize));
        draw_block(frame, area, ctx, PaneId::Rbac, sources, titles);
        return;
    }
    // Drill-down: the summary on top (all of it when zoomed, the deny rate otherwise).
    let keep = if ctx.zoomed {
        summary.len().min((body.height as usize).saturating_sub(3))
    } else {
        usize::from(body.height >= 3)
    };
    let summary = pick(summary, keep);
    let [top, rest] =
        Layout::vertical([Constraint::Length(summary.len() as u16), Constraint::Min(0)])
            .areas(body);
    lines(frame, top, summary);
    let [label, table_area] = Layout::vertical([
        Constraint::Length(u16::from(rest.height >= 2)),
        Constraint::Min(0),
    ])
    .areas(rest);
    match figures.top_denied {
        Some(t) if !t.rows.is_empty() => {
            let title = if t.title.is_empty() {
                "top denied operations × role".to_string()
            } else {
                one_line(&t.title)
            };
            lines(
                frame,
                label,
                vec![Line::from(Span::styled(title, theme.title))],
            );
            let (columns, rows) = denied_table(ctx, t);
            let selected = ctx
                .focused
                .then_some(ctx.ui.selected.min(rows.len().saturating_sub(1)));
            let view = table(frame, table_area, theme, &columns, &rows, selected);
            titles.bottom = more_hint(theme, &view);
        }
        Some(_) => lines(
            frame,
            rest,
            vec![Line::from(Span::styled(
                "✓ no denied operations in the period",
                theme.ok,
            ))],
        ),
        None => lines(
            frame,
            rest,
            vec![Line::from(Span::styled(
                "top denied operations: not read yet",
                theme.muted,
            ))],
        ),
    }
    titles.bottom_right = vec![Span::styled("drill-down", theme.accent)];
    draw_block(frame, area, ctx, PaneId::Rbac, sources, titles);
}

/// Keeps the `n` most needed lines (by their rank) in their natural order.
fn pick(lines: Vec<(u8, Line<'static>)>, n: usize) -> Vec<Line<'static>> {
    let mut ranked: Vec<(usize, u8)> = lines
        .iter()
        .enumerate()
        .map(|(i, (r, _))| (i, *r))
        .collect();
    ranked.sort_by_key(|(i, r)| (*r, *i));
    let mut chosen: Vec<usize> = ranked.into_iter().take(n).map(|(i, _)| i).collect();
    chosen.sort_unstable();
    let mut lines: Vec<Option<Line<'static>>> = lines.into_iter().map(|(_, l)| Some(l)).collect();
    chosen.into_iter().filter_map(|i| lines[i].take()).collect()
}

/// The summary lines with their rank (0 = shown first when there is little room).
fn summary_lines(
    ctx: &PaneContext,
    f: &Figures,
    cells: usize,
    zoomed_or_drilled: bool,
) -> Vec<(u8, Line<'static>)> {
    let theme = ctx.theme;
    let mut out = Vec::new();

    // The deny rate, the pane's headline: bold, coloured, with symbol and word. The last
    // minute beside it: an incident shows there before it moves the hour, and when the
    // minute is the worse of the two it comes first, so a narrow pane never cuts it.
    let headline = |figure: &FigureState, window: &str| -> Vec<Span<'static>> {
        let (text, style) = figure_text(theme, Some(figure));
        let sev = figure.figure.severity;
        vec![
            Span::styled(text, style.add_modifier(Modifier::BOLD)),
            Span::styled(
                format!(" {} {}", sev.symbol(), sev.label()),
                theme.severity(sev),
            ),
            Span::styled(format!(" {window}"), theme.muted),
        ]
    };
    let beside = |figure: &FigureState, window: &str| -> Vec<Span<'static>> {
        let (text, style) = figure_text(theme, Some(figure));
        let sev = figure.figure.severity;
        vec![
            Span::styled(format!(" · {window} "), theme.muted),
            Span::styled(text, style),
            Span::styled(format!(" {}", sev.symbol()), theme.severity(sev)),
        ]
    };
    let hour = f.deny_pct.filter(|d| d.figure.error.is_none());
    let minute = f.deny_pct_1m.filter(|r| r.figure.error.is_none());
    let rank = |f: Option<&FigureState>| f.map_or(0, |f| f.figure.severity.rank());
    let mut deny = vec![Span::styled("deny ", theme.muted)];
    match (hour, minute) {
        (hour, Some(minute)) if rank(Some(minute)) > rank(hour) => {
            deny.extend(headline(minute, "1m"));
            if let Some(hour) = hour {
                deny.extend(beside(hour, "1h"));
            }
        }
        (Some(hour), minute) => {
            deny.extend(headline(hour, "1h"));
            if let Some(minute) = minute {
                deny.extend(beside(minute, "1m"));
            }
        }
        (None, _) => match f.deny_pct {
            Some(failed) => {
                let (text, style) = figure_text(theme, Some(failed));
                deny.push(Span::styled("? ", theme.unknown));
                deny.push(Span::styled(text, style));
            }
            None => deny.push(Span::styled("—", theme.muted)),
        },
    }
    out.push((0, Line::from(deny)));

    // Checks, allows and denies: "checks 1284 · allow 1178 · deny 106"; the allows go
    // first when narrow, since the deny rate already says the share.
    let count = |label: &str, figure: Option<&FigureState>| -> Vec<Span<'static>> {
        let (text, style) = figure_text(theme, figure);
        let mark = match figure.map(|f| f.figure.severity) {
            Some(s) if s != crate::model::figure::Severity::Ok => format!("{} ", s.symbol()),
            _ => String::new(),
        };
        vec![
            Span::styled(format!("{label} "), theme.muted),
            Span::styled(format!("{mark}{text}"), style),
        ]
    };
    let sep = || Span::styled(" · ", theme.muted);
    let mut full = count("checks", f.checks);
    let mut short = full.clone();
    if f.allow.is_some() {
        full.push(sep());
        full.extend(count("allow", f.allow));
    }
    if f.deny.is_some() {
        full.push(sep());
        full.extend(count("deny", f.deny));
        short.push(sep());
        short.extend(count("deny", f.deny));
    }
    let full = Line::from(full);
    out.push((
        1,
        if full.width() <= cells {
            full
        } else {
            Line::from(short)
        },
    ));

    // The trend of the one-minute deny rate (the hour's rate moves too slowly to show a
    // spike), as far back as the history and the width allow; the bars past its warn and
    // crit limits in their colours, so the spike and where it crossed them show.
    if let Some(d) = f.deny_pct_1m.or(f.deny_pct) {
        let values = d.history_values();
        let label = if f.deny_pct_1m.is_some() {
            "1m trend "
        } else {
            "trend "
        };
        let bars = judged_sparkline(
            theme,
            &values,
            cells.saturating_sub(label.len()),
            d.limits,
            theme.ok,
        );
        if !bars.is_empty() {
            let mut line = vec![Span::styled(label, theme.muted)];
            line.extend(bars);
            out.push((3, Line::from(line)));
        }
    }

    // The most denied operation and role (the whole table is the drill-down).
    if !zoomed_or_drilled && let Some(t) = f.top_denied {
        let line = match t.rows.first() {
            Some(row) => {
                let (op, role, count) = top_columns(t);
                let cell = |i: Option<usize>| {
                    i.and_then(|i| row.get(i))
                        .map(|s| one_line(s))
                        .unwrap_or_default()
                };
                let mut parts = vec![
                    Span::styled("top ", theme.muted),
                    Span::styled(cell(op), theme.text),
                    Span::styled(format!(" {}", cell(role)), theme.accent),
                    Span::styled(format!(" ×{}", cell(count)), theme.muted),
                ];
                // Narrow: the label goes first, then the count (the drill-down has it).
                let fits = |p: &[Span]| p.iter().map(|s| s.width()).sum::<usize>() <= cells;
                if !fits(&parts) {
                    parts.remove(0);
                }
                if !fits(&parts) {
                    parts.pop();
                }
                Line::from(parts)
            }
            None => Line::from(Span::styled("top: no denials", theme.muted)),
        };
        out.push((2, line));
    }

    // Admin agents (seed 000 step 6: more than 20% is worth a review).
    if let Some(admin) = f.admin_pct {
        let (text, style) = figure_text(theme, Some(admin));
        let sev = admin.figure.severity;
        out.push((
            4,
            Line::from(vec![
                Span::styled("admin agents ", theme.muted),
                Span::styled(format!("{} {text}", sev.symbol()), style),
            ]),
        ));
    }
    out
}

/// Where the operation, role and count are in a top-denied table.
fn top_columns(t: &Table) -> (Option<usize>, Option<usize>, Option<usize>) {
    let find = |names: &[&str]| {
        t.columns
            .iter()
            .position(|c| names.iter().any(|n| c.eq_ignore_ascii_case(n)))
    };
    let op = find(&["operation", "op"]).or(Some(0));
    let role = find(&["role"]).or(if t.columns.len() > 2 { Some(1) } else { None });
    let count = find(&["denies", "deny_count", "count"]).or(t.columns.len().checked_sub(1));
    (op, role, count)
}

fn denied_table(ctx: &PaneContext, t: &Table) -> (Vec<Column>, Vec<Row>) {
    let theme = ctx.theme;
    let count_col = top_columns(t).2;
    let columns: Vec<Column> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let numeric = t
                .rows
                .iter()
                .all(|r| r.get(i).is_none_or(|c| c.trim().parse::<f64>().is_ok()));
            let align = if numeric { Align::Right } else { Align::Left };
            Column::named(one_line(name), 4, 40, i.min(250) as u8, align)
        })
        .collect();
    let rows = t
        .rows
        .iter()
        .map(|r| Row {
            cells: r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let style = if Some(i) == count_col {
                        theme.title
                    } else {
                        theme.text
                    };
                    Cell::new(one_line(c), style)
                })
                .collect(),
            style: Style::default(),
        })
        .collect();
    (columns, rows)
}

#[cfg(test)]
mod tests {
    use crate::ui::test_support::*;
    use crate::ui::{PaneId, UiState};
    use ratatui::style::Modifier;

    #[test]
    fn rbac_states() {
        insta::assert_snapshot!(states_sheet(PaneId::Rbac));
        insta::assert_snapshot!(zoomed_sheet(PaneId::Rbac, 80, 16));
    }

    #[test]
    fn rbac_drilldown_in_the_overview() {
        let ui = UiState {
            views: drilled(),
            ..UiState::default()
        };
        let buffer = draw_pane(
            PaneId::Rbac,
            &deployment(Level::Crit),
            &ui,
            &theme(),
            (40, 9),
            &Opts {
                focused: true,
                zoomed: false,
            },
        );
        insta::assert_snapshot!(text(&buffer));
        assert!(find(&buffer, "license.revoke").is_some());
    }

    #[test]
    fn crit_deny_rate_is_drawn_in_the_crit_style() {
        let theme = theme();
        let ui = UiState::default();
        let buffer = draw_pane(
            PaneId::Rbac,
            &deployment(Level::Crit),
            &ui,
            &theme,
            (30, 7),
            &PLAIN,
        );
        let (x, y) = find(&buffer, "62.4%").expect("deny rate on screen");
        let cell = &buffer[(x, y)];
        assert_eq!(Some(cell.fg), theme.crit.fg);
        assert!(cell.modifier.contains(Modifier::BOLD));
        let (x, y) = find(&buffer, "✖ CRIT").expect("severity word on screen");
        assert_eq!(Some(buffer[(x, y)].fg), theme.crit.fg);

        let buffer = draw_pane(
            PaneId::Rbac,
            &deployment(Level::Ok),
            &ui,
            &theme,
            (30, 7),
            &PLAIN,
        );
        let (x, y) = find(&buffer, "8.2%").expect("deny rate on screen");
        assert_eq!(Some(buffer[(x, y)].fg), theme.ok.fg);
    }

    /// The demo's incident at 80x24: the hour's rate is still low, the last minute is
    /// critical. The minute comes first, with its symbol, so the pane never cuts it; its
    /// trend is the minute's rate, where the spike shows.
    #[test]
    fn the_worse_minute_comes_first_and_is_never_cut() {
        let mut state = deployment(Level::Ok);
        let at = now() - chrono::Duration::seconds(2);
        for (i, minute) in [7.0, 8.0, 9.0, 8.5, 53.8].into_iter().enumerate() {
            let at = at - chrono::Duration::seconds(30 * (4 - i as i64));
            readings(
                &mut state,
                "tmws",
                vec![
                    crate::model::figure::Reading::number(
                        "tmws.rbac.deny_pct_1h",
                        "RBAC deny rate 1h",
                        9.3,
                        "%",
                    )
                    .with_rule(pct_rule(20.0, 50.0)),
                    crate::model::figure::Reading::number(
                        "tmws.rbac.deny_pct_1m",
                        "RBAC deny rate 1m",
                        minute,
                        "%",
                    )
                    .with_rule(pct_rule(20.0, 50.0)),
                ],
                at,
            );
        }
        let buffer = draw_screen(&state, &UiState::default(), &theme(), 80, 24);
        let screen = text(&buffer);
        let line = screen
            .lines()
            .find(|l| l.contains("deny 53.8%"))
            .unwrap_or_else(|| panic!("the minute's rate first:\n{screen}"));
        assert!(line.contains("deny 53.8% ✖"), "{line}");
        // The trend's bars: the calm minutes in the OK style, the spike past crit in crit's.
        let (x, y) = find(&buffer, "1m trend ").expect("the minute's trend");
        let bars: Vec<_> = (x + 9..buffer.area.width)
            .map(|x| &buffer[(x, y)])
            .take_while(|c| "▁▂▃▄▅▆▇█".contains(c.symbol()))
            .collect();
        assert_eq!(bars.len(), 5, "{screen}");
        assert_eq!(bars[4].fg, theme().crit.fg.unwrap(), "the spike");
        assert!(
            bars[..4].iter().all(|c| c.fg == theme().ok.fg.unwrap()),
            "{screen}"
        );
        assert!(
            screen.lines().last().unwrap().contains("q:quit"),
            "{screen}"
        );

        // Calm: the hour first, the minute beside it.
        let calm = deployment(Level::Ok);
        let screen = text(&draw_screen(&calm, &UiState::default(), &theme(), 80, 24));
        assert!(screen.contains("deny 8.2% ✓ OK 1h"), "{screen}");
    }

    #[test]
    fn drilldown_shows_only_while_rbac_is_focused() {
        let state = deployment(Level::Crit);
        let ui = UiState {
            views: drilled(),
            ..UiState::default()
        };
        let screen = text(&draw_pane(
            PaneId::Rbac,
            &state,
            &ui,
            &theme(),
            (40, 9),
            &PLAIN,
        ));
        assert!(!screen.contains("license.generate"), "{screen}");
        assert!(screen.contains("trend"), "{screen}");
    }
}
