//! The registry of SQLite packs: the id a config names a pack by (`pack = "tmws"`), mapped
//! to the code that reads it. The ids and figures live in the catalogue
//! (`model::catalog::sqlite::PACKS`), where `config` validates them without importing
//! any collector.
//!
//! Adding a pack: a module here implementing [`Pack`], its line in [`REGISTRY`], and its
//! figures and entry in the catalogue.

mod tmws;

use super::pack::{Pack, PackOptions};
use crate::model::catalog;
use crate::model::catalog::sqlite::PackFigures;

/// Builds a pack for one source.
type Build = fn(&PackOptions) -> Box<dyn Pack>;

/// Every pack: its catalogue entry and how to build it.
const REGISTRY: &[(&PackFigures, Build)] = &[(&catalog::tmws::PACK, tmws::TmwsPack::build)];

/// A pack id the registry does not know. `Display` is the text every figure of the source
/// shows.
#[derive(Debug, thiserror::Error)]
#[error("unknown pack {id:?} (known packs: {})", catalog::sqlite::PACK_IDS.join(", "))]
pub(crate) struct UnknownPack {
    id: String,
}

/// The pack named `id` for one source, or why there is none (the known ids listed).
pub(crate) fn build(id: &str, options: &PackOptions) -> Result<Box<dyn Pack>, UnknownPack> {
    REGISTRY
        .iter()
        .find(|(entry, _)| entry.id == id)
        .map(|(_, build)| build(options))
        .ok_or_else(|| UnknownPack { id: id.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pack_of_the_catalogue_is_registered_once() {
        assert_eq!(REGISTRY.len(), catalog::sqlite::PACKS.len());
        for entry in catalog::sqlite::PACKS {
            let pack = build(entry.id, &PackOptions::default()).unwrap();
            assert_eq!(pack.catalog(), entry);
            assert_eq!(pack.figs(), entry.figs);
        }
        let unknown = build("nope", &PackOptions::default()).err().unwrap();
        assert_eq!(
            unknown.to_string(),
            "unknown pack \"nope\" (known packs: tmws)"
        );
    }
}
