use super::*;

/// pnpm 9's shape: importers with `{specifier, version}`, resolutions under
/// `packages`, the dependency graph under `snapshots` (peer suffixes in keys).
const V9: &str = r#"lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

importers:

  .:
    devDependencies:
      typescript:
        specifier: ^5.4.0
        version: 5.4.5

  packages/common:
    dependencies:
      '@platform/events':
        specifier: workspace:*
        version: link:../events
      zod:
        specifier: ^3.22.0
        version: 3.22.4

  services/billing:
    dependencies:
      '@platform/common':
        specifier: workspace:*
        version: link:../../packages/common
      react-dom:
        specifier: ^18.2.0
        version: 18.2.0(react@18.2.0)
      string-width-cjs:
        specifier: npm:string-width@^4.2.0
        version: string-width@4.2.3

packages:

  loose-envify@1.4.0:
    resolution: {integrity: sha512-loose}
    hasBin: true

  react-dom@18.2.0:
    resolution: {integrity: sha512-dom}
    peerDependencies:
      react: ^18.2.0

  react@18.2.0:
    resolution: {integrity: sha512-react}
    engines: {node: '>=0.10.0'}

  string-width@4.2.3:
    resolution: {integrity: sha512-sw}

  typescript@5.4.5:
    resolution: {integrity: sha512-ts}

  zod@3.22.4:
    resolution: {integrity: sha512-zod}

snapshots:

  loose-envify@1.4.0: {}

  react-dom@18.2.0(react@18.2.0):
    dependencies:
      loose-envify: 1.4.0
      react: 18.2.0

  react@18.2.0:
    dependencies:
      loose-envify: 1.4.0

  string-width@4.2.3: {}

  typescript@5.4.5: {}

  zod@3.22.4: {}
"#;

/// pnpm 8's v6 shape: leading `/` in package keys, resolution and graph together.
const V6: &str = r#"lockfileVersion: '6.0'

importers:

  services/api:
    dependencies:
      express:
        specifier: ^4.19.0
        version: 4.19.2

packages:

  /accepts@1.3.8:
    resolution: {integrity: sha512-acc}
    dev: false

  /express@4.19.2:
    resolution: {integrity: sha512-exp}
    dependencies:
      accepts: 1.3.8
    dev: false
"#;

fn keys(lock: &Lockfile, dir: &str) -> Vec<String> {
    lock.closure(dir).keys().map(|k| k.to_string()).collect()
}

#[test]
fn v9_closures_follow_snapshots_aliases_and_peer_suffixes_not_links() {
    let lock = Lockfile::parse(V9).unwrap();
    assert_eq!(lock.version, "9.0");
    assert_eq!(
        keys(&lock, "services/billing"),
        [
            "loose-envify@1.4.0",
            "react-dom@18.2.0(react@18.2.0)",
            "react@18.2.0",
            "string-width@4.2.3",
        ]
    );
    assert_eq!(keys(&lock, "packages/common"), ["zod@3.22.4"]);
    assert_eq!(keys(&lock, "."), ["typescript@5.4.5"]);
    assert!(keys(&lock, "services/none").is_empty());
}

#[test]
fn v6_closures_strip_the_leading_slash() {
    let lock = Lockfile::parse(V6).unwrap();
    assert_eq!(
        keys(&lock, "services/api"),
        ["accepts@1.3.8", "express@4.19.2"]
    );
}

#[test]
fn a_bump_names_the_package_and_both_versions() {
    let before = Lockfile::parse(V9).unwrap();
    let after = Lockfile::parse(
        &V9.replace("version: 3.22.4", "version: 3.23.0")
            .replace("zod@3.22.4", "zod@3.23.0"),
    )
    .unwrap();
    let bump = direct_change(&before, &after, "packages/common").unwrap();
    assert_eq!(bump.to_string(), "zod 3.22.4 → 3.23.0");
    assert_eq!(
        closure_change(
            &before.closure("packages/common"),
            &after.closure("packages/common")
        )
        .unwrap()
        .to_string(),
        "zod 3.22.4 → 3.23.0"
    );
    // Nothing else moved.
    assert_eq!(direct_change(&before, &after, "services/billing"), None);
    assert_eq!(
        closure_change(
            &before.closure("services/billing"),
            &after.closure("services/billing")
        ),
        None
    );
}

#[test]
fn a_transitive_bump_and_a_changed_resolution_are_found() {
    let before = Lockfile::parse(V9).unwrap();
    let after = Lockfile::parse(
        &V9.replace("loose-envify: 1.4.0", "loose-envify: 1.4.1")
            .replace("loose-envify@1.4.0", "loose-envify@1.4.1"),
    )
    .unwrap();
    assert_eq!(direct_change(&before, &after, "services/billing"), None);
    assert_eq!(
        closure_change(
            &before.closure("services/billing"),
            &after.closure("services/billing")
        )
        .unwrap()
        .to_string(),
        "loose-envify 1.4.0 → 1.4.1"
    );
    let repacked = Lockfile::parse(&V9.replace("sha512-react", "sha512-other")).unwrap();
    assert_eq!(
        closure_change(
            &before.closure("services/billing"),
            &repacked.closure("services/billing")
        )
        .unwrap()
        .to_string(),
        "react 18.2.0 re-resolved"
    );
}

#[test]
fn global_keys_and_unusable_lockfiles() {
    let before = Lockfile::parse(V9).unwrap();
    let overridden =
        Lockfile::parse(&V9.replace("importers:", "overrides:\n  zod: 3.23.0\n\nimporters:"))
            .unwrap();
    assert_eq!(before.global_change(&overridden), Some("overrides"));
    assert_eq!(before.global_change(&before.clone()), None);
    let patched = Lockfile::parse(&V9.replace(
        "importers:",
        "patchedDependencies:\n  zod@3.22.4:\n    hash: abc\n    path: patches/zod.patch\n\nimporters:",
    ))
    .unwrap();
    assert_eq!(before.global_change(&patched), Some("patchedDependencies"));
    assert_eq!(
        Lockfile::parse(&V9.replace("'9.0'", "'5.4'")).unwrap_err(),
        Unusable(r#"pnpm-lock.yaml has lockfileVersion "5.4", not 6.x or 9.x"#.into())
    );
    let broken = Lockfile::parse("lockfileVersion: '9.0'\nimporters: [\n").unwrap_err();
    assert!(
        broken.0.starts_with("pnpm-lock.yaml does not parse ("),
        "{broken:?}"
    );
    assert_eq!(
        Lockfile::parse("<<<<<<< HEAD\n").unwrap_err(),
        Unusable("pnpm-lock.yaml is not a YAML mapping".into())
    );
}

#[test]
fn the_cache_gives_back_what_it_kept_by_blob_and_drops_the_oldest_beyond_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("lockfiles"));
    let lock = Lockfile::parse(V9).unwrap();
    let blob = git2::Oid::hash_object(git2::ObjectType::Blob, V9.as_bytes()).unwrap();
    assert_eq!(cache.load(blob), None, "nothing kept yet");
    cache.store(blob, &lock);
    assert_eq!(cache.load(blob), Some(lock.clone()));
    // What the comparison reads survives the round trip.
    let loaded = cache.load(blob).unwrap();
    assert_eq!(
        loaded.closure("services/billing"),
        lock.closure("services/billing")
    );

    // A torn or foreign file is a miss, not an error.
    std::fs::write(cache.path(blob), b"{\"version\":").unwrap();
    assert_eq!(cache.load(blob), None);

    for n in 0..CACHE_MAX + 3 {
        let other =
            git2::Oid::hash_object(git2::ObjectType::Blob, format!("{n}").as_bytes()).unwrap();
        cache.store(other, &lock);
    }
    let kept = std::fs::read_dir(dir.path().join("lockfiles"))
        .unwrap()
        .count();
    assert_eq!(kept, CACHE_MAX);
}

#[test]
fn entries_compare_by_a_digest_that_any_change_of_content_changes() {
    assert_eq!(digest("zod@3.22.4{}"), digest("zod@3.22.4{}"));
    assert_ne!(digest("zod@3.22.4{}"), digest("zod@3.22.5{}"));
    // Fixed across builds: a cached digest is compared with one computed now.
    assert_eq!(digest(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(digest("a"), 0xaf63_dc4c_8601_ec8c);
}
