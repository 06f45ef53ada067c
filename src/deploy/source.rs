//! Where the images rolled come from: built from HEAD and pushed (a deploy), found in
//! the registry by preflight (`deploy rollback`, `deploy undo`), or copied by digest
//! from another environment's registry (`deploy promote`). One value carries the
//! difference through preflight, the confirmation and step 6 (`images`).

use crate::model::plan::Mode;

/// Where a run's images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ImageSource {
    /// Built from HEAD and pushed: `deploy`, `--changed`, `--services`.
    Build,
    /// The images of an older commit, already in the registry: `deploy rollback`.
    Rollback,
    /// The tags the undone run replaced, already in the registry: `deploy undo`.
    Undo,
    /// Copied by digest from the source environment's registry: `deploy promote`.
    Promote,
}

impl ImageSource {
    pub fn of(mode: Mode) -> Self {
        match mode {
            Mode::Full | Mode::Changed | Mode::Services => ImageSource::Build,
            Mode::Rollback => ImageSource::Rollback,
            Mode::Undo => ImageSource::Undo,
            Mode::Promote => ImageSource::Promote,
        }
    }

    /// Whether preflight needs the Docker daemon: a promotion copies through the
    /// registries' HTTP API.
    pub fn needs_docker(self) -> bool {
        self != ImageSource::Promote
    }

    /// Whether the images are already in this environment's registry, for preflight to
    /// find before anything is touched.
    pub fn in_the_registry(self) -> bool {
        matches!(self, ImageSource::Rollback | ImageSource::Undo)
    }

    /// Whether SPAs are restored from kept releases instead of built and uploaded.
    pub fn restores_spas(self) -> bool {
        self.in_the_registry()
    }

    /// The prompt of the typed `y`, and what an answer other than `y` means.
    pub fn confirmation(self) -> (&'static str, &'static str) {
        match self {
            ImageSource::Build => (
                "Type y to build and push: ",
                "not confirmed: nothing was built or pushed",
            ),
            ImageSource::Rollback => (
                "Type y to roll back: ",
                "not confirmed: nothing was rolled back",
            ),
            ImageSource::Undo => ("Type y to undo: ", "not confirmed: nothing was undone"),
            ImageSource::Promote => (
                "Type y to copy and roll: ",
                "not confirmed: nothing was copied or rolled",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_takes_its_images_from_one_source() {
        // mode, source, Docker, in the registry, SPAs restored
        let table = [
            (Mode::Full, ImageSource::Build, true, false, false),
            (Mode::Changed, ImageSource::Build, true, false, false),
            (Mode::Services, ImageSource::Build, true, false, false),
            (Mode::Rollback, ImageSource::Rollback, true, true, true),
            (Mode::Undo, ImageSource::Undo, true, true, true),
            (Mode::Promote, ImageSource::Promote, false, false, false),
        ];
        for (mode, source, docker, found, spas) in table {
            assert_eq!(ImageSource::of(mode), source, "{mode:?}");
            assert_eq!(source.needs_docker(), docker, "{mode:?}");
            assert_eq!(source.in_the_registry(), found, "{mode:?}");
            assert_eq!(source.restores_spas(), spas, "{mode:?}");
        }
    }

    #[test]
    fn each_source_is_confirmed_in_its_own_words() {
        let table = [
            (
                ImageSource::Build,
                "Type y to build and push: ",
                "nothing was built or pushed",
            ),
            (
                ImageSource::Rollback,
                "Type y to roll back: ",
                "nothing was rolled back",
            ),
            (ImageSource::Undo, "Type y to undo: ", "nothing was undone"),
            (
                ImageSource::Promote,
                "Type y to copy and roll: ",
                "nothing was copied or rolled",
            ),
        ];
        for (source, prompt, refused) in table {
            let (asked, not_confirmed) = source.confirmation();
            assert_eq!(asked, prompt);
            assert_eq!(not_confirmed, format!("not confirmed: {refused}"));
        }
    }
}
