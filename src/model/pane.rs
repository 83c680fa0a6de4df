//! The panes by name: which pane a source feeds, which pane has the focus. The order of
//! the panes on screen (focus order, the `1`–`9` keys, the layout) is the UI's business:
//! `ui::panes::panes()`.

/// A pane of the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PaneId {
    Services,
    Rbac,
    License,
    Containers,
    Host,
    Errors,
    Alerts,
    Window,
    /// Every figure without a pane of its own: PromQL, Redis, PostgreSQL, command and
    /// exec figures, `[[logs.L.metric]]` and `[[sqlite.S.metric]]`.
    Figures,
}

impl PaneId {
    /// A short lowercase name (the Window pane lists the panes a source feeds by it).
    pub fn key(self) -> &'static str {
        match self {
            PaneId::Services => "services",
            PaneId::Rbac => "rbac",
            PaneId::License => "license",
            PaneId::Containers => "containers",
            PaneId::Host => "host",
            PaneId::Errors => "errors",
            PaneId::Alerts => "alerts",
            PaneId::Window => "window",
            PaneId::Figures => "figures",
        }
    }

    /// The title on its frame.
    pub fn title(self) -> &'static str {
        match self {
            PaneId::Services => "Services",
            PaneId::Rbac => "RBAC",
            PaneId::License => "License",
            PaneId::Containers => "Containers",
            PaneId::Host => "Host",
            PaneId::Errors => "Errors",
            PaneId::Alerts => "Alerts",
            PaneId::Window => "Window",
            PaneId::Figures => "Figures",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PaneId;

    #[test]
    fn every_pane_has_its_own_key() {
        let all = [
            PaneId::Services,
            PaneId::Rbac,
            PaneId::License,
            PaneId::Containers,
            PaneId::Host,
            PaneId::Errors,
            PaneId::Alerts,
            PaneId::Window,
            PaneId::Figures,
        ];
        let keys: std::collections::HashSet<_> = all.iter().map(|p| p.key()).collect();
        assert_eq!(keys.len(), all.len());
        for pane in all {
            assert_eq!(pane.key(), pane.title().to_lowercase());
        }
    }
}
