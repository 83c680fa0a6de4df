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
    /// PromQL figures (zoomed only, like the window).
    Metrics,
}

impl PaneId {
    /// The name a collector gives the pane it feeds (`Collector::panes`).
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
            PaneId::Metrics => "metrics",
        }
    }

    /// The pane a collector's name stands for.
    pub fn from_key(key: &str) -> Option<PaneId> {
        Some(match key {
            "services" => PaneId::Services,
            "rbac" => PaneId::Rbac,
            "license" => PaneId::License,
            "containers" => PaneId::Containers,
            "host" => PaneId::Host,
            "errors" => PaneId::Errors,
            "alerts" => PaneId::Alerts,
            "window" => PaneId::Window,
            "metrics" => PaneId::Metrics,
            _ => return None,
        })
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
            PaneId::Metrics => "Metrics",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PaneId;

    #[test]
    fn a_key_names_its_pane_and_nothing_else() {
        for key in [
            "services",
            "rbac",
            "license",
            "containers",
            "host",
            "errors",
            "alerts",
            "window",
            "metrics",
        ] {
            assert_eq!(PaneId::from_key(key).map(PaneId::key), Some(key));
        }
        assert_eq!(PaneId::from_key("Errors"), None);
    }
}
