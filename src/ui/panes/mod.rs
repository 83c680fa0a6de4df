//! One file per pane. Each has `render(frame, area, ctx)` and a `PANE` entry: its part of
//! the key table, its key handling and, where it has one, its own view state.
//!
//! This file lists the panes: [`PANES`] (focus order, the `1`–`9` keys), the overview's
//! layout ([`OVERVIEW`]) and the panes' view states ([`Views`]).
//!
//! To add a pane:
//! 1. `model/pane.rs`: a `PaneId` variant, with its key and title;
//! 2. `ui/panes/<pane>.rs`: `render`, `pub const PANE`, and if it needs them its `KEYS`,
//!    `handle`, `settle` and a view-state struct;
//! 3. this file: `pub mod <pane>;`, its `PANE` in [`PANES`], its place in [`OVERVIEW`] (or
//!    none: shown zoomed), its view state in [`Views`].
//!
//! A collector feeds it by naming it in `Collector::panes`.

pub mod alerts;
pub mod common;
pub mod containers;
pub mod errors;
pub mod header;
pub mod host;
pub mod license;
pub mod metrics;
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
    metrics::PANE,
];

/// The overview, top to bottom: bands (percent of the height), each with its panes left to
/// right (percent of the width). The Window pane is the header line in the overview; it
/// and the Metrics pane are shown zoomed.
pub(crate) const OVERVIEW: &[(u16, &[(PaneId, u16)])] = &[
    // Status figures.
    (
        30,
        &[
            (PaneId::Services, 40),
            (PaneId::Rbac, 30),
            (PaneId::License, 30),
        ],
    ),
    // Resources.
    (30, &[(PaneId::Containers, 60), (PaneId::Host, 40)]),
    // Triage.
    (40, &[(PaneId::Errors, 60), (PaneId::Alerts, 40)]),
];

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
}

/// A pane's prompt: whether it is open, and what the footer shows while it is.
pub(crate) struct Prompt {
    pub open: fn(&UiState) -> bool,
    pub line: fn(&UiState, &Theme) -> Vec<Span<'static>>,
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
        }
    }
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
}

const fn ids() -> [PaneId; PANES.len()] {
    let mut out = [PaneId::Services; PANES.len()];
    let mut i = 0;
    while i < PANES.len() {
        out[i] = PANES[i].id;
        i += 1;
    }
    out
}

const IDS: [PaneId; PANES.len()] = ids();

/// The panes in focus order; the one list that focus, the number keys and the layout use.
pub(crate) fn panes() -> &'static [PaneId] {
    &IDS
}

/// A pane's entry.
pub(crate) fn pane(id: PaneId) -> Option<&'static Pane> {
    PANES.iter().find(|p| p.id == id)
}

/// The key that focuses it ("1".."9").
pub fn number(id: PaneId) -> usize {
    panes().iter().position(|p| *p == id).unwrap_or(0) + 1
}

pub fn next(id: PaneId) -> PaneId {
    panes()[number(id) % panes().len()]
}

pub fn previous(id: PaneId) -> PaneId {
    panes()[(number(id) + panes().len() - 2) % panes().len()]
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
    fn every_pane_is_listed_once_and_the_overview_places_listed_panes_once() {
        let mut seen = Vec::new();
        for id in panes() {
            assert!(!seen.contains(id), "{id:?} twice");
            seen.push(*id);
        }
        let placed: Vec<PaneId> = OVERVIEW
            .iter()
            .flat_map(|(_, row)| row.iter().map(|(p, _)| *p))
            .collect();
        for id in &placed {
            assert!(panes().contains(id), "{id:?} placed but not listed");
            assert_eq!(placed.iter().filter(|p| *p == id).count(), 1);
        }
        assert!(panes().len() <= 9, "the number keys reach nine panes");
    }

    #[test]
    fn focus_goes_round_in_pane_order() {
        let first = panes()[0];
        let last = *panes().last().unwrap();
        assert_eq!(number(first), 1);
        assert_eq!(next(last), first);
        assert_eq!(previous(first), last);
    }
}
