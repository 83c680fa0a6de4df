//! One file per pane. Each has `render(frame, area, ctx)` and a `PANE` entry: its part of
//! the key table, its key handling and, where it has one, its own view state.
//!
//! This file lists the panes: [`PANES`], the overview's layout for the panes the config
//! feeds ([`on_overview`], [`overview_rows`]: also the focus order and the `1`–`9` keys)
//! and the panes' view states ([`Views`]).
//!
//! To add a pane:
//! 1. `model/pane.rs`: a `PaneId` variant, with its key and title;
//! 2. `ui/panes/<pane>.rs`: `render`, `pub const PANE`, and if it needs them its `KEYS`,
//!    `handle`, `settle` and a view-state struct;
//! 3. this file: `pub mod <pane>;`, its `PANE` in [`PANES`], its place in `STATUS` or `TRIAGE`
//!    (or none: shown zoomed), and when it is fed in [`on_overview`], its view state in [`Views`].
//!
//! A collector feeds it by naming it in `Collector::panes`.

pub mod alerts;
pub mod common;
pub mod containers;
pub mod errors;
pub mod figures;
pub mod header;
pub mod host;
pub mod license;
pub mod rbac;
pub mod services;
pub mod window;

use super::keys::{Action, Binding};
use super::theme::Theme;
use super::{PaneContext, PaneId, UiState};
use crate::state::AppState;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;

/// The panes, in focus order: `1` focuses the first, Tab goes down the list.
pub(crate) const PANES: &[Pane] = &[
    services::PANE,
    rbac::PANE,
    license::PANE,
    containers::PANE,
    host::PANE,
    errors::PANE,
    alerts::PANE,
    window::PANE,
    figures::PANE,
];

/// The overview's places, left to right and top to bottom, each pane with its share of
/// its row's width: status figures, then resources, then triage (the Errors tail and the
/// Alerts). A pane no source feeds is not drawn and the others share its room (see
/// [`overview_rows`]). The Window pane is the header line in the overview, and zoomed.
const STATUS: &[(PaneId, u16)] = &[
    (PaneId::Services, 40),
    (PaneId::Rbac, 30),
    (PaneId::License, 30),
    (PaneId::Figures, 40),
    (PaneId::Containers, 60),
    (PaneId::Host, 40),
];
const TRIAGE: &[(PaneId, u16)] = &[(PaneId::Errors, 60), (PaneId::Alerts, 40)];

/// The panes of the overview when every source kind of the demo is configured (its
/// layout: Services, RBAC, License; Containers, Host; Errors, Alerts).
pub(crate) const DEMO_OVERVIEW: &[PaneId] = &[
    PaneId::Services,
    PaneId::Rbac,
    PaneId::License,
    PaneId::Containers,
    PaneId::Host,
    PaneId::Errors,
    PaneId::Alerts,
];

/// The panes on the overview for what the config feeds, in focus order (the `1`–`9`
/// keys): those a source feeds, the Figures pane when the config has figures without a
/// pane of their own, and the Alerts always.
pub(crate) fn on_overview(state: &AppState) -> Vec<PaneId> {
    STATUS
        .iter()
        .chain(TRIAGE)
        .map(|(pane, _)| *pane)
        .filter(|pane| match pane {
            PaneId::Alerts => true,
            PaneId::Figures => {
                !state.sources_of(PaneId::Figures).is_empty() || !state.listed_figures.is_empty()
            }
            pane => !state.sources_of(*pane).is_empty(),
        })
        .collect()
}

/// The overview's rows for the panes on it, top to bottom: (the largest share of the
/// height it may take, in percent, the panes left to right with their weights). Up to
/// three status and resource panes share one row; more take two (three above, the rest
/// below: the demo's layout). The triage row takes what the others leave.
pub(crate) fn overview_rows(shown: &[PaneId]) -> Vec<(u16, Vec<(PaneId, u16)>)> {
    let pick = |places: &[(PaneId, u16)]| -> Vec<(PaneId, u16)> {
        places
            .iter()
            .filter(|(pane, _)| shown.contains(pane))
            .copied()
            .collect()
    };
    let (top, triage) = (pick(STATUS), pick(TRIAGE));
    let mut rows = Vec::new();
    match top.len() {
        0 => {}
        1..=3 => rows.push((45, top)),
        n => {
            let first = n.div_ceil(2);
            rows.push((30, top[..first].to_vec()));
            rows.push((30, top[first..].to_vec()));
        }
    }
    if !triage.is_empty() {
        let used: u16 = rows.iter().map(|(h, _)| h).sum();
        rows.push((100 - used, triage));
    }
    rows
}

/// The rows a row of panes wants on the overview: its tallest pane's, or `None` when one
/// of them takes all it gets.
pub(crate) fn row_height(state: &AppState, row: &[(PaneId, u16)]) -> Option<u16> {
    row.iter().try_fold(0u16, |tallest, (id, _)| {
        let wanted = pane(*id).and_then(|p| (p.height)(state))?;
        Some(tallest.max(wanted))
    })
}

/// Each pane's own view state (scroll, sort, filter, …), kept in [`UiState::views`].
#[derive(Clone, Debug, Default)]
pub struct Views {
    pub errors: errors::ErrorsView,
    pub containers: containers::ContainersView,
    pub rbac: rbac::RbacView,
}

/// A pane: its id, how it draws, its keys and how it handles them.
pub(crate) struct Pane {
    pub id: PaneId,
    pub render: fn(&mut Frame, Rect, &PaneContext),
    /// Its part of the key table (the keys of the whole screen are in `ui::keys`).
    pub keys: &'static [Binding],
    /// Carries out an action, or passes it on ([`Outcome::Pass`]). Offered every action,
    /// the focused pane first, before the screen's own handling.
    pub handle: fn(&Action, &mut Cx) -> Outcome,
    /// After every action and every batch of updates: keeps its view state in step with
    /// the focus, the zoom and the data. `moved` says the selection was moved.
    pub settle: fn(&mut Cx, bool),
    /// A prompt of its own (the Errors filter), during which keys are text.
    pub prompt: Option<Prompt>,
    /// The rows it has to show on the overview, borders included; `None`: as many as it
    /// gets (the Errors tail, the Alerts). A row of the overview is as tall as its tallest
    /// pane wants, up to its share, and what is left goes to the panes that want more.
    pub height: fn(&AppState) -> Option<u16>,
}

/// A pane's prompt: whether it is open, and what the footer shows while it is (the text
/// with its cursor in the cells given). Its text is edited with the keys of every prompt
/// (`ui::keys`), offered to the pane as [`Action::Edit`] while it is open.
pub(crate) struct Prompt {
    pub open: fn(&UiState) -> bool,
    pub line: fn(&UiState, &Theme, usize) -> Vec<Span<'static>>,
}

impl Pane {
    /// A pane that only draws; fields are overridden for keys, handling, a prompt.
    pub const fn new(id: PaneId, render: fn(&mut Frame, Rect, &PaneContext)) -> Pane {
        Pane {
            id,
            render,
            keys: &[],
            handle: pass,
            settle: nothing,
            prompt: None,
            height: as_tall_as_it_gets,
        }
    }
}

fn as_tall_as_it_gets(_: &AppState) -> Option<u16> {
    None
}

fn pass(_: &Action, _: &mut Cx) -> Outcome {
    Outcome::Pass
}

fn nothing(_: &mut Cx, _: bool) {}

/// What a pane's key handling gets: the UI state, and what is shown.
pub struct Cx<'a> {
    pub ui: &'a mut UiState,
    /// The state on screen (the frozen copy while paused).
    pub shown: &'a AppState,
    /// The live state (what an acknowledgement applies to).
    pub live: &'a AppState,
}

/// What a pane made of an action.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Not its business: the next pane, then the screen, handle it.
    Pass,
    /// Carried out.
    Done,
    /// Acknowledge this alert (the app writes it to the record).
    Acknowledge(String),
    /// Take this alert's acknowledgement back (written to the record too).
    Unacknowledge(String),
    /// Put this text on the terminal's clipboard (the app writes it at the next frame).
    Copy(String),
}

#[cfg(test)]
const fn ids() -> [PaneId; PANES.len()] {
    let mut out = [PaneId::Services; PANES.len()];
    let mut i = 0;
    while i < PANES.len() {
        out[i] = PANES[i].id;
        i += 1;
    }
    out
}

#[cfg(test)]
const IDS: [PaneId; PANES.len()] = ids();

/// Every pane (for tests that go through them all; the overview has [`on_overview`]).
#[cfg(test)]
pub(crate) fn panes() -> &'static [PaneId] {
    &IDS
}

/// A pane's entry.
pub(crate) fn pane(id: PaneId) -> Option<&'static Pane> {
    PANES.iter().find(|p| p.id == id)
}

/// The key that focuses it ("1".."9") among the panes on the overview, if it is there.
pub fn number(shown: &[PaneId], id: PaneId) -> Option<usize> {
    shown.iter().position(|p| *p == id).map(|i| i + 1)
}

/// A pane's title with its number key for a message ("Alerts (7)"), or without one when
/// it is not on the overview.
pub(crate) fn title_with_number(ui: &UiState, id: PaneId) -> String {
    match number(ui.keymap.panes(), id) {
        Some(n) => format!("{} ({n})", id.title()),
        None => id.title().to_string(),
    }
}

/// The pane after `id` on the overview (the first, from a pane shown only zoomed).
pub fn next(shown: &[PaneId], id: PaneId) -> PaneId {
    if shown.is_empty() {
        return id;
    }
    match number(shown, id) {
        Some(n) => shown[n % shown.len()],
        None => shown[0],
    }
}

/// The pane before `id` on the overview (the last, from a pane shown only zoomed).
pub fn previous(shown: &[PaneId], id: PaneId) -> PaneId {
    if shown.is_empty() {
        return id;
    }
    match number(shown, id) {
        Some(n) => shown[(n + shown.len() - 2) % shown.len()],
        None => shown[shown.len() - 1],
    }
}

/// The pane whose prompt is open, if one is.
pub(crate) fn prompt_open(ui: &UiState) -> Option<PaneId> {
    PANES
        .iter()
        .find(|p| p.prompt.as_ref().is_some_and(|prompt| (prompt.open)(ui)))
        .map(|p| p.id)
}

/// Offers an action to the panes, the focused one first; the first that does not pass.
pub fn handle(action: &Action, cx: &mut Cx) -> Outcome {
    let focused = cx.ui.focus;
    let order = pane(focused)
        .into_iter()
        .chain(PANES.iter().filter(|p| p.id != focused));
    for pane in order {
        match (pane.handle)(action, cx) {
            Outcome::Pass => {}
            outcome => return outcome,
        }
    }
    Outcome::Pass
}

/// Lets every pane bring its view state in step (see [`Pane::settle`]).
pub(crate) fn settle(cx: &mut Cx, moved: bool) {
    for pane in PANES {
        (pane.settle)(cx, moved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pane_is_listed_once_and_placed_at_most_once() {
        let mut seen = Vec::new();
        for id in panes() {
            assert!(!seen.contains(id), "{id:?} twice");
            seen.push(*id);
        }
        let placed: Vec<PaneId> = STATUS.iter().chain(TRIAGE).map(|(p, _)| *p).collect();
        for id in &placed {
            assert!(panes().contains(id), "{id:?} placed but not listed");
            assert_eq!(placed.iter().filter(|p| *p == id).count(), 1);
        }
        assert!(placed.len() <= 9, "the number keys reach nine panes");
    }

    #[test]
    fn the_demos_panes_keep_the_demos_layout() {
        let rows = overview_rows(DEMO_OVERVIEW);
        let panes: Vec<Vec<PaneId>> = rows
            .iter()
            .map(|(_, row)| row.iter().map(|(p, _)| *p).collect())
            .collect();
        use PaneId::*;
        assert_eq!(
            panes,
            [
                vec![Services, Rbac, License],
                vec![Containers, Host],
                vec![Errors, Alerts]
            ]
        );
        let heights: Vec<u16> = rows.iter().map(|(h, _)| *h).collect();
        assert_eq!(heights, [30, 30, 40]);
    }

    #[test]
    fn fewer_panes_share_fewer_rows() {
        use PaneId::*;
        let rows = overview_rows(&[Services, Figures, Host, Errors, Alerts]);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].0 + rows[1].0, 100);
        assert_eq!(overview_rows(&[Alerts]), vec![(100, vec![(Alerts, 40)])]);
        let six = overview_rows(&[Services, Rbac, License, Figures, Containers, Host, Alerts]);
        assert_eq!(six[1].1.len(), 3, "{six:?}");
    }

    #[test]
    fn focus_goes_round_the_panes_on_the_overview() {
        use PaneId::*;
        let shown = [Services, Figures, Alerts];
        assert_eq!(number(&shown, Figures), Some(2));
        assert_eq!(number(&shown, Rbac), None);
        assert_eq!(next(&shown, Alerts), Services);
        assert_eq!(previous(&shown, Services), Alerts);
        // From a pane shown only zoomed (the Window), Tab goes to the first.
        assert_eq!(next(&shown, Window), Services);
        assert_eq!(previous(&shown, Window), Alerts);
    }
}
