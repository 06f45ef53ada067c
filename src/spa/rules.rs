//! Per-file upload rules: Content-Type from the extension (mime_guess), Cache-Control
//! from what the file is (entry point, content-hashed asset, anything else), and the
//! small glob patterns `[spa_upload]` uses to say which is which.

use crate::glob::{Dialect, Glob};
use crate::model::config::SpaUploadConfig;

/// What a file is, for caching and upload order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileClass {
    /// `index.html` and the like: always revalidated, uploaded last.
    EntryPoint,
    /// A name that changes with the content (`app.3f9a1c2e.js`): cached for a year.
    Immutable,
    /// Anything else (`favicon.svg`, `robots.txt`): a short cache.
    Other,
}

/// Classifies a bucket key (`assets/app.3f9a1c2e.js`). Entry-point patterns win over
/// the hash detection, so `page.1a2b3c4d.html` still gets `no-cache`.
pub fn classify(key: &str, settings: &SpaUploadConfig) -> FileClass {
    if settings
        .entry_points
        .iter()
        .any(|pattern| pattern_matches(pattern, key))
    {
        FileClass::EntryPoint
    } else if has_content_hash(file_name(key))
        || settings
            .immutable
            .iter()
            .any(|pattern| pattern_matches(pattern, key))
    {
        FileClass::Immutable
    } else {
        FileClass::Other
    }
}

/// The Cache-Control header for a class of file.
pub fn cache_control(class: FileClass, settings: &SpaUploadConfig) -> &str {
    match class {
        FileClass::EntryPoint => &settings.entry_point_cache_control,
        FileClass::Immutable => &settings.immutable_cache_control,
        FileClass::Other => &settings.default_cache_control,
    }
}

/// Content-Type from the extension, with `; charset=utf-8` for text (build tools emit
/// UTF-8; without the parameter browsers guess, and guess Latin-1 for some types).
pub fn content_type(key: &str) -> String {
    let mime = mime_guess::from_path(key).first_or_octet_stream();
    let essence = mime.essence_str();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            essence,
            "application/javascript" | "application/json" | "application/xml"
        )
        || essence.ends_with("+json")
        || essence.ends_with("+xml");
    if textual && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{essence}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

/// Whether a file name carries a content hash: a `.`- or `-`-separated segment between
/// the stem and the extension of at least 8 hex digits, at least one of them a digit
/// (`app.3f9a1c2e.js`, `chunk-0a1b2c3d4e5f.css`, `main.3f9a1c2e.bundle.js`). The digit
/// rule keeps words such as `deadbeef` or `facade` from being taken for hashes: a wrong
/// "yes" would cache a mutable file for a year, a wrong "no" only costs a short cache.
/// Base64-style hashes (Vite 5's `index-BDxk3Uf2.js`) are not recognised: list them in
/// `spa_upload.immutable` (e.g. `"assets/**"`).
pub fn has_content_hash(file_name: &str) -> bool {
    let Some((stem, _extension)) = file_name.rsplit_once('.') else {
        return false;
    };
    // The first segment is the name itself: `3f9a1c2e.js` alone is not "name.hash.ext".
    stem.split(['.', '-']).skip(1).any(|segment| {
        segment.len() >= 8
            && segment.bytes().all(|b| b.is_ascii_hexdigit())
            && segment.bytes().any(|b| b.is_ascii_digit())
    })
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Matches a pattern of `spa_upload.entry_points` / `spa_upload.immutable` against a
/// bucket key. `*` is any run of characters but `/`, `**` any run including `/`, `?`
/// one character but `/`. A pattern without `/` matches the file name in any directory
/// (`*.html`); one with `/` matches the whole key from the top (`assets/**`, `/sw.js`).
pub fn pattern_matches(pattern: &str, key: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_prefix('/') {
        Some(rest) => (rest, true),
        None => (pattern, pattern.contains('/')),
    };
    let subject = if anchored { key } else { file_name(key) };
    Glob::new(pattern, Dialect::Simple).matches(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_comes_from_the_extension_with_utf8_for_text() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("assets/app.3f9a1c2e.js", "text/javascript; charset=utf-8"),
            ("assets/app.mjs", "application/javascript; charset=utf-8"),
            ("assets/style.3f9a1c2e.css", "text/css; charset=utf-8"),
            ("favicon.svg", "image/svg+xml; charset=utf-8"),
            ("data/config.json", "application/json; charset=utf-8"),
            (
                "site.webmanifest",
                "application/manifest+json; charset=utf-8",
            ),
            ("robots.txt", "text/plain; charset=utf-8"),
            ("logo.png", "image/png"),
            ("fonts/inter.woff2", "font/woff2"),
            ("app.wasm", "application/wasm"),
            ("LICENSE", "application/octet-stream"),
            ("archive.unknownext", "application/octet-stream"),
        ];
        for (key, expected) in cases {
            assert_eq!(content_type(key), expected, "{key}");
        }
    }

    #[test]
    fn hashed_names_are_detected() {
        for name in [
            "app.3f9a1c2e.js",
            "style.0123abcd.css",
            "chunk-0a1b2c3d4e5f.js",
            "main.3f9a1c2e.bundle.js",
            "vendor.3F9A1C2E.js",
            "logo.12345678.png",
        ] {
            assert!(has_content_hash(name), "{name} should count as hashed");
        }
        for name in [
            "index.html",
            "favicon.svg",
            "3f9a1c2e.js",     // no name before the hash
            "app.3f9a1c2.js",  // 7 hex digits
            "app.deadbeef.js", // a word, not a hash
            "app.3f9a1c2g.js", // not hex
            "my-component-settings.js",
            "noextension",
        ] {
            assert!(!has_content_hash(name), "{name} should not count as hashed");
        }
    }

    #[test]
    fn classification_and_cache_control_follow_the_defaults() {
        let settings = SpaUploadConfig::default();
        let cases = [
            ("index.html", FileClass::EntryPoint, "no-cache"),
            ("admin/index.html", FileClass::EntryPoint, "no-cache"),
            ("page.1a2b3c4d.html", FileClass::EntryPoint, "no-cache"),
            (
                "assets/app.3f9a1c2e.js",
                FileClass::Immutable,
                "public, max-age=31536000, immutable",
            ),
            ("favicon.svg", FileClass::Other, "public, max-age=300"),
            (
                "assets/index-BDxk3Uf2.js",
                FileClass::Other,
                "public, max-age=300",
            ),
        ];
        for (key, class, header) in cases {
            assert_eq!(classify(key, &settings), class, "{key}");
            assert_eq!(cache_control(class, &settings), header, "{key}");
        }
    }

    #[test]
    fn configured_patterns_extend_the_rules() {
        let settings = SpaUploadConfig {
            entry_points: vec!["*.html".into(), "/sw.js".into()],
            immutable: vec!["assets/**".into()],
            ..SpaUploadConfig::default()
        };
        assert_eq!(classify("sw.js", &settings), FileClass::EntryPoint);
        assert_eq!(classify("nested/sw.js", &settings), FileClass::Other);
        assert_eq!(
            classify("assets/index-BDxk3Uf2.js", &settings),
            FileClass::Immutable
        );
        assert_eq!(
            classify("assets/fonts/inter.woff2", &settings),
            FileClass::Immutable
        );
    }

    #[test]
    fn patterns() {
        let yes = [
            ("*.html", "index.html"),
            ("*.html", "a/b/index.html"),
            ("index.html", "docs/index.html"),
            ("/index.html", "index.html"),
            ("assets/*", "assets/app.js"),
            ("assets/**", "assets/a/b/c.js"),
            ("**/*.map", "x.map"),
            ("**/*.map", "a/b/x.map"),
            ("a/**/z.js", "a/z.js"),
            ("a/**/z.js", "a/b/c/z.js"),
            ("?.txt", "a.txt"),
        ];
        for (pattern, key) in yes {
            assert!(
                pattern_matches(pattern, key),
                "{pattern} should match {key}"
            );
        }
        let no = [
            ("*.html", "index.htm"),
            ("assets/*", "assets/a/b.js"),
            ("assets/*", "other/assets/a.js"),
            ("/index.html", "docs/index.html"),
            ("?.txt", "ab.txt"),
            ("a/?", "a//"),
        ];
        for (pattern, key) in no {
            assert!(
                !pattern_matches(pattern, key),
                "{pattern} should not match {key}"
            );
        }
    }
}
