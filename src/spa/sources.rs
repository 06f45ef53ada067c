//! What the working tree holds of each SPA, read before the plan: whether its directory
//! exists, and the uncommitted paths among what it builds from ([`super::inputs`]).
//! The plan decides from it (`model::plan`'s SPA half); nothing here refuses.

use std::path::Path;

use crate::model::plan::{SpaSource, SpaSources};
use crate::model::platform::Platform;

/// Each SPA of `platform`, against the working tree's `uncommitted` paths. A read that
/// fails is kept as its error: the plan reports it only where it needs the inputs.
pub fn read(platform: &Platform, uncommitted: &[String]) -> SpaSources {
    platform
        .spas
        .iter()
        .map(|spa| {
            let source = read_one(&platform.root, &spa.dir, uncommitted);
            (spa.name.clone(), source)
        })
        .collect()
}

fn read_one(root: &Path, dir: &Path, uncommitted: &[String]) -> SpaSource {
    if !root.join(dir).is_dir() {
        return SpaSource::NoDir;
    }
    match super::inputs::spa_inputs(root, dir) {
        Ok(inputs) => SpaSource::Dirty(super::inputs::dirty_inputs(uncommitted, &inputs)),
        Err(err) => SpaSource::Unreadable(format!("{err:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_and_the_dirty_inputs_are_read() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/platform");
        let platform = crate::checkout::load_platform(&root).unwrap();
        let admin = platform.spas.iter().find(|s| s.name == "admin-ui").unwrap();
        let inside = format!("{}/src/main.ts", admin.dir.display());
        let uncommitted = vec![inside.clone(), "services/api/x.ts".to_owned()];
        let sources = read(&platform, &uncommitted);
        assert_eq!(sources.len(), platform.spas.len());
        assert_eq!(sources["admin-ui"], SpaSource::Dirty(vec![inside]));
        assert_eq!(
            read_one(&root, Path::new("no/such/dir"), &uncommitted),
            SpaSource::NoDir
        );
    }
}
