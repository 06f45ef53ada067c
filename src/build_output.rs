//! What a failed build's output says, for the image builds and the SPA builds alike:
//! a transient npm/corepack network blip (SPEC §5: worth one more try), or a full disk
//! (the runbook's `ERR_PNPM_ENOSPC`, answered with its safe remedy).

/// A transient network error inside a build step (npm, corepack): `message` is the
/// failure's own line, `tail` the last lines of its log.
pub fn is_transient(message: &str, tail: &[String]) -> bool {
    let text = format!("{message}\n{}", tail.join("\n"));
    [
        "ETIMEDOUT",
        "ECONNRESET",
        "EAI_AGAIN",
        "ENOTFOUND registry",
        "corepack",
        "socket hang up",
    ]
    .iter()
    .any(|needle| text.contains(needle))
        && !is_out_of_disk(&text)
}

/// `ERR_PNPM_ENOSPC` / "no space left on device" (the runbook's troubleshooting entry).
pub fn is_out_of_disk(text: &str) -> bool {
    text.contains("ENOSPC") || text.to_lowercase().contains("no space left on device")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_blips_are_transient_but_a_full_disk_is_not() {
        let tail = |line: &str| vec![line.to_owned()];
        assert!(is_transient(
            "exit code: 1",
            &tail("npm ERR! code ETIMEDOUT")
        ));
        assert!(is_transient(
            "Internal Error: corepack could not fetch pnpm",
            &[]
        ));
        assert!(!is_transient(
            "exit code: 1",
            &tail("error TS2304: Cannot find name")
        ));
        assert!(!is_transient(
            "exit code: 1",
            &tail("ERR_PNPM_ENOSPC ENOSPC: no space left on device (after ECONNRESET)")
        ));
        assert!(is_out_of_disk("write /x: No space left on device"));
    }
}
