//! The graph decision on real temporary repositories: the table of the issue's cases.

use super::*;
use crate::changes::workspace::tests::package;
use crate::git::testing::TestRepo;

const WORKSPACE: &str = "packages:\n  - services/*\n  - packages/*\n  - apps/*\n";

/// A v9 lockfile: `api` → express → debug → ms; `@p/common` → debug → ms; the
/// admin-ui SPA → react. `top` goes before `importers` (overrides and such).
fn lockfile(express: &str, ms: &str, react: &str, top: &str) -> String {
    format!(
        r#"lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false
{top}
importers:

  .: {{}}

  apps/admin-ui:
    dependencies:
      '@p/ui':
        specifier: workspace:*
        version: link:../../packages/ui
      react:
        specifier: ^18.2.0
        version: {react}

  packages/common:
    dependencies:
      '@p/events':
        specifier: workspace:*
        version: link:../events
      debug:
        specifier: ^4.3.0
        version: 4.3.4

  packages/events: {{}}

  packages/auth-client: {{}}

  packages/ui: {{}}

  services/api:
    dependencies:
      '@p/auth-client':
        specifier: workspace:*
        version: link:../../packages/auth-client
      express:
        specifier: ^4.19.0
        version: {express}

  services/billing:
    dependencies:
      '@p/common':
        specifier: workspace:*
        version: link:../../packages/common

packages:

  debug@4.3.4:
    resolution: {{integrity: sha512-debug}}

  express@{express}:
    resolution: {{integrity: sha512-express}}

  ms@{ms}:
    resolution: {{integrity: sha512-ms}}

  react@{react}:
    resolution: {{integrity: sha512-react}}

snapshots:

  debug@4.3.4:
    dependencies:
      ms: {ms}

  express@{express}:
    dependencies:
      debug: 4.3.4

  ms@{ms}: {{}}

  react@{react}: {{}}
"#
    )
}

fn base_lockfile() -> String {
    lockfile("4.19.2", "2.1.2", "18.2.0", "")
}

/// The live commit: two services, four packages, one SPA.
fn live_tree() -> Vec<(String, String)> {
    [
        ("pnpm-workspace.yaml", WORKSPACE.to_owned()),
        ("package.json", r#"{"name":"platform"}"#.to_owned()),
        ("pnpm-lock.yaml", base_lockfile()),
        ("README.md", "# platform".to_owned()),
        ("infra/docker/service.Dockerfile", "FROM node".to_owned()),
        (
            "services/api/package.json",
            package("@p/api", &["@p/auth-client"]),
        ),
        ("services/api/src/index.ts", "1".to_owned()),
        (
            "services/billing/package.json",
            package("@p/billing", &["@p/common"]),
        ),
        (
            "packages/common/package.json",
            package("@p/common", &["@p/events"]),
        ),
        ("packages/common/README.md", "common".to_owned()),
        ("packages/events/package.json", package("@p/events", &[])),
        ("packages/events/src/x.ts", "1".to_owned()),
        (
            "packages/auth-client/package.json",
            package("@p/auth-client", &[]),
        ),
        ("packages/auth-client/src/x.ts", "1".to_owned()),
        ("packages/ui/package.json", package("@p/ui", &[])),
        (
            "apps/admin-ui/package.json",
            package("@p/admin-ui", &["@p/ui"]),
        ),
    ]
    .into_iter()
    .map(|(path, text)| (path.to_owned(), text))
    .collect()
}

const SUBJECTS: [(&str, &str); 3] = [
    ("api", "services/api"),
    ("billing", "services/billing"),
    ("admin-ui", "apps/admin-ui"),
];

/// The reason (or `None`) for api, billing and admin-ui after `changes` on top of
/// the live tree, ignoring `ignore` and with `inputs` as every subject's extra inputs.
fn reasons_with(changes: &[(&str, &str)], ignore: &[&str], inputs: &[&str]) -> [Option<String>; 3] {
    let repo = TestRepo::new();
    let live: Vec<(String, String)> = live_tree();
    let live: Vec<(&str, &str)> = live.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let base = repo.commit(&live);
    let head = repo.commit(changes);
    let dirs = SUBJECTS.map(|(_, dir)| dir.to_owned()).to_vec();
    let ignore: Vec<String> = ignore.iter().map(|g| g.to_string()).collect();
    let mut graph = GraphCache::new(&repo.repo, head, dirs, &ignore);
    let fan_out = ["infra/docker/service.Dockerfile".to_owned()];
    SUBJECTS.map(|(name, dir)| {
        let subject = Subject {
            name,
            dir,
            fan_out: &fan_out,
            inputs,
        };
        graph
            .cause(base, &subject)
            .unwrap()
            .map(|cause| cause.to_string())
    })
}

fn reasons(changes: &[(&str, &str)]) -> [Option<String>; 3] {
    reasons_with(changes, &[], &[])
}

fn some(reason: &str) -> Option<String> {
    Some(reason.to_owned())
}

#[test]
fn a_leaf_package_change_reaches_one_service() {
    assert_eq!(
        reasons(&[("packages/auth-client/src/x.ts", "2")]),
        [
            some("packages/auth-client/src/x.ts → @p/auth-client ← api"),
            None,
            None
        ]
    );
}

#[test]
fn a_package_two_hops_away_names_the_whole_chain() {
    assert_eq!(
        reasons(&[("packages/events/src/x.ts", "2")]),
        [
            None,
            some("packages/events/src/x.ts → @p/events ← @p/common ← billing"),
            None
        ]
    );
}

#[test]
fn a_dependency_edge_added_at_head_counts() {
    // At HEAD @p/ui starts depending on @p/events, which changes in the same commit:
    // admin-ui reaches it only through HEAD's graph.
    let [api, billing, admin] = reasons(&[
        (
            "packages/ui/package.json",
            &package("@p/ui", &["@p/events"]),
        ),
        ("packages/events/src/x.ts", "2"),
    ]);
    assert_eq!(api, None);
    assert_eq!(
        billing,
        some("packages/events/src/x.ts → @p/events ← @p/common ← billing")
    );
    assert_eq!(
        admin,
        some("packages/ui/package.json → @p/ui ← admin-ui"),
        "the edge itself is a change of @p/ui"
    );
}

#[test]
fn a_dependency_edge_removed_at_head_counts_for_the_old_side() {
    // @p/common stops using @p/events at HEAD: billing's image had it, so it rebuilds.
    let [_, billing, _] = reasons(&[("packages/common/package.json", &package("@p/common", &[]))]);
    assert_eq!(
        billing,
        some("packages/common/package.json → @p/common ← billing")
    );
}

#[test]
fn a_renamed_workspace_package_reaches_its_dependents_on_both_sides() {
    let [api, billing, admin] = reasons(&[
        ("packages/events/package.json", &package("@p/bus", &[])),
        (
            "packages/common/package.json",
            &package("@p/common", &["@p/bus"]),
        ),
    ]);
    assert_eq!(api, None);
    assert_eq!(
        billing,
        some("packages/common/package.json → @p/common ← billing")
    );
    assert_eq!(admin, None);
}

#[test]
fn a_lockfile_bump_of_one_importers_direct_dependency_reaches_only_it() {
    assert_eq!(
        reasons(&[("pnpm-lock.yaml", &lockfile("4.19.3", "2.1.2", "18.2.0", ""))]),
        [some("lockfile: express 4.19.2 → 4.19.3"), None, None]
    );
}

#[test]
fn a_transitive_bump_reached_by_two_services() {
    assert_eq!(
        reasons(&[("pnpm-lock.yaml", &lockfile("4.19.2", "2.1.3", "18.2.0", ""))]),
        [
            some("lockfile: ms 2.1.2 → 2.1.3"),
            some("lockfile: ms 2.1.2 → 2.1.3 (reached through @p/common)"),
            None
        ]
    );
}

#[test]
fn a_lockfile_change_only_in_an_spas_importer_rolls_no_service() {
    assert_eq!(
        reasons(&[("pnpm-lock.yaml", &lockfile("4.19.2", "2.1.2", "18.3.1", ""))]),
        [None, None, some("lockfile: react 18.2.0 → 18.3.1")]
    );
}

#[test]
fn a_lockfile_change_elsewhere_rolls_nothing() {
    let settings_only = base_lockfile().replace(
        "excludeLinksFromLockfile: false",
        "excludeLinksFromLockfile: true",
    );
    assert_eq!(
        reasons(&[("pnpm-lock.yaml", &settings_only)]),
        [None, None, None]
    );
}

#[test]
fn an_overrides_change_falls_back_to_everything() {
    let overridden = lockfile("4.19.2", "2.1.2", "18.2.0", "\noverrides:\n  ms: 2.1.2\n");
    let all = some("pnpm-lock.yaml: overrides changed: every service and SPA deploys");
    assert_eq!(
        reasons(&[("pnpm-lock.yaml", &overridden)]),
        [all.clone(), all.clone(), all]
    );
}

#[test]
fn an_unparseable_lockfile_falls_back_to_everything() {
    let [api, billing, admin] = reasons(&[(
        "pnpm-lock.yaml",
        "<<<<<<< HEAD\nlockfileVersion: '9.0'\n=======\n",
    )]);
    assert_eq!(api, billing);
    assert_eq!(billing, admin);
    let reason = api.unwrap();
    assert!(
        reason.starts_with("pnpm-lock.yaml does not parse (")
            && reason.ends_with("): every service and SPA deploys"),
        "{reason}"
    );
}

#[test]
fn readme_only_changes_roll_nothing_once_ignored() {
    let changes = [("README.md", "# new"), ("packages/common/README.md", "new")];
    assert_eq!(
        reasons_with(&changes, &["**/*.md"], &[]),
        [None, None, None]
    );
    // Without the ignore glob a package's README is a change of the package.
    assert_eq!(
        reasons(&changes)[1],
        some("packages/common/README.md → @p/common ← billing")
    );
}

#[test]
fn build_inputs_and_extra_inputs_fan_out() {
    let all = some("build input infra/docker/service.Dockerfile changed");
    assert_eq!(
        reasons(&[("infra/docker/service.Dockerfile", "FROM node:22")]),
        [all.clone(), all.clone(), all]
    );
    let [api, ..] = reasons_with(&[("infra/k8s/x.yaml", "1")], &[], &["infra/**"]);
    assert_eq!(api, some("infra/k8s/x.yaml changed (input infra/**)"));
}

#[test]
fn own_files_come_before_the_graph() {
    let [api, ..] = reasons(&[
        ("services/api/src/index.ts", "2"),
        ("services/api/src/new.ts", "1"),
        ("packages/auth-client/src/x.ts", "2"),
    ]);
    assert_eq!(api, some("services/api/src/index.ts and 1 more changed"));
}
