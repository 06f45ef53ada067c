//! `minimum_version = "X.Y.Z"` in deploy.toml: the oldest deploy that may run this
//! repository's config. A pinned CI binary older than that stops at once with a message
//! that says so (exit 2), instead of failing on a key it does not know or, worse,
//! rolling with a meaning the config no longer has.
//!
//! Checked on the raw TOML before the config is read into its types, so that the version
//! is what an old binary complains about even when the file also uses newer keys.
//! Binaries from before this key reject it as an unknown key, which fails loudly too.

/// The check against this binary's own version.
pub fn check(text: &str) -> Result<(), String> {
    check_against(text, env!("CARGO_PKG_VERSION"))
}

/// `Err` when `text` sets `minimum_version` above `ours`, or to something that is not a
/// version. A file that is not valid TOML passes here: the typed parse reports it.
pub(crate) fn check_against(text: &str, ours: &str) -> Result<(), String> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let Some(value) = table.get("minimum_version") else {
        return Ok(());
    };
    let wanted = value.as_str().and_then(parse).ok_or_else(|| {
        format!("minimum_version = {value} is not a version: write it as e.g. \"0.4.0\"")
    })?;
    let ours_parsed = parse(ours).expect("the crate version is X.Y.Z");
    if ours_parsed >= wanted {
        return Ok(());
    }
    Err(format!(
        "this repository needs deploy {} or newer (minimum_version), and this is deploy {ours}: install a newer release (README, Install) or the version your CI pins",
        value.as_str().unwrap_or_default()
    ))
}

/// `X`, `X.Y` or `X.Y.Z` (numbers), missing parts 0. A pre-release suffix (`-rc.1`) is
/// ignored on our own version: a release candidate counts as its release.
fn parse(text: &str) -> Option<[u64; 3]> {
    let core = text.trim().split(['-', '+']).next()?;
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() > 3 {
        return None;
    }
    let mut parts = [0; 3];
    for (part, text) in parts.iter_mut().zip(numbers) {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *part = text.parse().ok()?;
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_binary_fails_naming_both_versions() {
        let err = check_against("minimum_version = \"0.4.0\"\n", "0.3.9").unwrap_err();
        assert!(err.contains("needs deploy 0.4.0 or newer"), "{err}");
        assert!(err.contains("this is deploy 0.3.9"), "{err}");
        assert!(check_against("minimum_version = \"0.4\"", "0.3.12").is_err());
        assert!(check_against("minimum_version = \"1\"", "0.99.0").is_err());
    }

    #[test]
    fn the_same_or_a_newer_binary_passes() {
        for ours in ["0.4.0", "0.4.1", "0.10.0", "1.0.0", "0.4.0-rc.1"] {
            assert_eq!(
                check_against("minimum_version = \"0.4.0\"", ours),
                Ok(()),
                "{ours}"
            );
        }
        assert_eq!(check_against("minimum_version = \"0.4\"", "0.4.0"), Ok(()));
        assert_eq!(
            check_against("[docker]\nconcurrency = 2\n", "0.1.0"),
            Ok(())
        );
        assert_eq!(check_against("not toml [", "0.1.0"), Ok(()));
    }

    #[test]
    fn a_value_that_is_not_a_version_is_an_error() {
        for bad in [
            "\"\"",
            "\"latest\"",
            "\"0.4.x\"",
            "\"1.2.3.4\"",
            "4",
            "\">=0.4\"",
        ] {
            let err = check_against(&format!("minimum_version = {bad}"), "0.1.0").unwrap_err();
            assert!(err.contains("is not a version"), "{bad}: {err}");
        }
    }
}
