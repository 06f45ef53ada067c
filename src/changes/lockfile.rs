//! `pnpm-lock.yaml` by importer (lockfile v6 and v9): each workspace directory's own
//! entries, and the resolved closure of the external packages it reaches, so that a
//! bump is charged to exactly the importers that reach it (`[changes] mode = "graph"`).
//!
//! pnpm writes the lockfile as YAML; it is read with `yaml-rust2` (a full YAML 1.2
//! parser) rather than line by line, as entries may be quoted, flow-style or multi-line.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use yaml_rust2::{Yaml, YamlLoader};

/// Top-level keys that change how every package resolves: a change in any of them
/// rolls every service (pnpm re-resolves the whole workspace).
const GLOBAL_KEYS: [&str; 3] = ["overrides", "patchedDependencies", "pnpmfileChecksum"];

/// A lockfile, parsed. Serialisable for [`Cache`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lockfile {
    /// `lockfileVersion` as written (`'6.0'`, `'9.0'`).
    pub version: String,
    /// The [`GLOBAL_KEYS`] present, each as a canonical text.
    global: BTreeMap<String, String>,
    /// Importer directory (`.` for the root, `services/billing`) → its entries.
    importers: BTreeMap<String, Importer>,
    /// Package key (`zod@3.22.4`, `react-dom@18.2.0(react@18.2.0)`) → resolved entry.
    packages: HashMap<String, Package>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Importer {
    /// The importer's whole section, canonical, as a [`digest`]: any change to it counts.
    text: u64,
    /// Direct dependency name → resolved version as written (`3.22.4`, `link:../x`).
    dependencies: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Package {
    /// The entry (v9: its `packages` and `snapshots` entries together), canonical, as a
    /// [`digest`].
    text: u64,
    /// Keys of the packages it depends on (dependencies and optionalDependencies).
    dependencies: Vec<String>,
}

pub use crate::model::plan::Bump;

/// Why two lockfiles cannot be compared by importer: every service deploys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable(pub String);

impl Lockfile {
    /// Parses a lockfile; `Err` says why it cannot be used (not YAML, an unknown
    /// `lockfileVersion`, a shape pnpm does not write).
    pub fn parse(text: &str) -> Result<Self, Unusable> {
        let docs = YamlLoader::load_from_str(text)
            .map_err(|err| Unusable(format!("pnpm-lock.yaml does not parse ({err})")))?;
        let doc = docs.first().unwrap_or(&Yaml::Null);
        if doc.as_hash().is_none() {
            return Err(Unusable("pnpm-lock.yaml is not a YAML mapping".into()));
        }
        let version = scalar(&doc["lockfileVersion"]).unwrap_or_default();
        let v9 = match version.split('.').next() {
            Some("6") => false,
            Some("9") => true,
            _ => {
                return Err(Unusable(format!(
                    "pnpm-lock.yaml has lockfileVersion {version:?}, not 6.x or 9.x"
                )))
            }
        };
        let global = GLOBAL_KEYS
            .into_iter()
            .filter(|key| !doc[*key].is_badvalue())
            .map(|key| (key.to_owned(), canonical(&doc[key])))
            .collect();
        let mut importers = BTreeMap::new();
        match doc["importers"].as_hash() {
            Some(hash) => {
                for (dir, entry) in hash {
                    let dir = scalar(dir).ok_or_else(|| shape("an importer key"))?;
                    importers.insert(dir, importer(entry)?);
                }
            }
            // A single-project v6 lockfile keeps the root's entries at the top.
            None if !v9 => {
                importers.insert(".".to_owned(), importer(doc)?);
            }
            None => {}
        }
        let mut packages = HashMap::new();
        let section = if v9 { "snapshots" } else { "packages" };
        if let Some(hash) = doc[section].as_hash() {
            for (key, entry) in hash {
                let key = scalar(key).ok_or_else(|| shape("a package key"))?;
                let key = key.trim_start_matches('/').to_owned();
                let mut text = canonical(entry);
                if v9 {
                    // The resolution (integrity, tarball) lives under the key without
                    // the peer suffix.
                    let base = key.split('(').next().unwrap_or(&key);
                    let _ = write!(text, "|{}", canonical(&doc["packages"][base]));
                }
                let mut dependencies = Vec::new();
                for kind in ["dependencies", "optionalDependencies"] {
                    if let Some(deps) = entry[kind].as_hash() {
                        for (name, version) in deps {
                            if let (Some(name), Some(version)) = (scalar(name), scalar(version)) {
                                dependencies.extend(package_key(&name, &version));
                            }
                        }
                    }
                }
                packages.insert(
                    key,
                    Package {
                        text: digest(&text),
                        dependencies,
                    },
                );
            }
        }
        Ok(Self {
            version,
            global,
            importers,
            packages,
        })
    }

    /// The first of `overrides`, `patchedDependencies`, `pnpmfileChecksum` that differs
    /// between `self` (before) and `after`.
    pub fn global_change(&self, after: &Lockfile) -> Option<&'static str> {
        GLOBAL_KEYS
            .into_iter()
            .find(|key| self.global.get(*key) != after.global.get(*key))
    }

    /// Whether `dir`'s own importer section differs between `self` and `after`.
    pub fn importer_changed(&self, after: &Lockfile, dir: &str) -> bool {
        self.importers.get(dir).map(|i| &i.text) != after.importers.get(dir).map(|i| &i.text)
    }

    /// Every external package `dir` reaches (its direct dependencies and theirs), by key,
    /// with its entry. Workspace links (`link:`) are not followed: the graph covers them.
    pub fn closure(&self, dir: &str) -> BTreeMap<&str, u64> {
        let mut seen = BTreeMap::new();
        let Some(importer) = self.importers.get(dir) else {
            return seen;
        };
        let mut queue: Vec<String> = importer
            .dependencies
            .iter()
            .filter_map(|(name, version)| package_key(name, version))
            .collect();
        while let Some(key) = queue.pop() {
            let Some((key, package)) = self.packages.get_key_value(&key) else {
                continue;
            };
            if seen.insert(key.as_str(), package.text).is_none() {
                queue.extend(package.dependencies.iter().cloned());
            }
        }
        seen
    }
}

/// Parsed lockfiles by blob id, under the repository's `.git/deploy/lockfiles/`: a blob
/// never changes, and the live commit's lockfile is the same on every `--changed` until the
/// next deploy, so a warm plan parses neither side (on a 43k-line lockfile each parse is
/// most of the graph decision: bench/results-changed-graph.md). A cache that cannot be read
/// or written only costs the parse it would have saved.
pub struct Cache {
    dir: std::path::PathBuf,
}

/// Entries kept at most (each is about the lockfile's size); beyond, the oldest go.
const CACHE_MAX: usize = 16;

/// Changes when what [`Lockfile::parse`] keeps changes, so an older deploy's entries are
/// not read as this one's.
const CACHE_FORMAT: u32 = 1;

impl Cache {
    pub fn new(dir: std::path::PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, blob: git2::Oid) -> std::path::PathBuf {
        self.dir.join(format!(
            "{blob}-v{CACHE_FORMAT}-{}.json",
            env!("CARGO_PKG_VERSION")
        ))
    }

    /// The lockfile whose blob is `blob`, when parsed before.
    pub fn load(&self, blob: git2::Oid) -> Option<Lockfile> {
        let text = std::fs::read(self.path(blob)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Keeps `lockfile` (the parse of `blob`), dropping the oldest entries beyond
    /// [`CACHE_MAX`].
    pub fn store(&self, blob: git2::Oid, lockfile: &Lockfile) {
        let Ok(text) = serde_json::to_vec(lockfile) else {
            return;
        };
        if crate::changes::write_whole(&self.path(blob), &text).is_err() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, std::path::PathBuf)> = entries
            .flatten()
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() > CACHE_MAX {
            entries.sort();
            for (_, old) in &entries[..entries.len() - CACHE_MAX] {
                let _ = std::fs::remove_file(old);
            }
        }
    }
}

/// What differs between two closures of one importer, first by name: `None` when
/// they are the same.
pub fn closure_change(before: &BTreeMap<&str, u64>, after: &BTreeMap<&str, u64>) -> Option<Bump> {
    if before == after {
        return None;
    }
    let by_name = |closure: &BTreeMap<&str, u64>| {
        let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for key in closure.keys() {
            let (name, version) = split_key(key);
            names.entry(name.into()).or_default().insert(version.into());
        }
        names
    };
    let (old, new) = (by_name(before), by_name(after));
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let versions = |map: &BTreeMap<String, BTreeSet<String>>, name: &String| {
        map.get(name)
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    };
    // A version change first; else an entry whose resolution changed in place.
    names
        .iter()
        .find(|name| old.get(**name) != new.get(**name))
        .or_else(|| {
            names.iter().find(|name| {
                let differs = |(key, text): (&&str, &u64)| {
                    split_key(key).0 == name.as_str() && after.get(key) != Some(text)
                };
                before.iter().any(differs)
            })
        })
        .map(|name| Bump {
            name: (*name).clone(),
            from: versions(&old, name),
            to: versions(&new, name),
        })
}

/// The direct dependency of an importer that differs: its version before and after.
pub fn direct_change(before: &Lockfile, after: &Lockfile, dir: &str) -> Option<Bump> {
    let empty = BTreeMap::new();
    let old = before
        .importers
        .get(dir)
        .map_or(&empty, |i| &i.dependencies);
    let new = after.importers.get(dir).map_or(&empty, |i| &i.dependencies);
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let name = names
        .into_iter()
        .find(|name| old.get(*name) != new.get(*name))?;
    let version = |map: &BTreeMap<String, String>| {
        map.get(name)
            .map(|v| vec![shown_version(name, v)])
            .unwrap_or_default()
    };
    Some(Bump {
        name: name.clone(),
        from: version(old),
        to: version(new),
    })
}

/// The package key a dependency resolves to: `name@version`, or the version itself
/// when it is already a key (an alias, `string-width@4.2.3`; v6: `/string-width@4.2.3`).
/// `None` for workspace and local links, which are not packages of the lockfile.
fn package_key(name: &str, version: &str) -> Option<String> {
    if version.starts_with("link:") || version.starts_with("file:") {
        return None;
    }
    let version = version.trim_start_matches('/');
    let plain = version.split('(').next().unwrap_or(version);
    Some(if plain.contains('@') {
        version.to_owned()
    } else {
        format!("{name}@{version}")
    })
}

/// A resolved version as a reader knows it: an alias's own version, a link as written.
fn shown_version(name: &str, version: &str) -> String {
    match package_key(name, version) {
        Some(key) => split_key(&key).1.to_owned(),
        None => version.to_owned(),
    }
}

/// `@scope/name@1.2.3(peer@1)` → (`@scope/name`, `1.2.3(peer@1)`).
fn split_key(key: &str) -> (&str, &str) {
    let plain_end = key.find('(').unwrap_or(key.len());
    match key[..plain_end].rfind('@').filter(|at| *at > 0) {
        Some(at) => (&key[..at], &key[at + 1..]),
        None => (key, ""),
    }
}

fn importer(entry: &Yaml) -> Result<Importer, Unusable> {
    let mut dependencies = BTreeMap::new();
    for kind in ["dependencies", "devDependencies", "optionalDependencies"] {
        let Some(deps) = entry[kind].as_hash() else {
            continue;
        };
        for (name, dep) in deps {
            let name = scalar(name).ok_or_else(|| shape("a dependency name"))?;
            // v6 and v9 write `{specifier, version}`; v5-style plain versions too.
            let version = scalar(&dep["version"])
                .or_else(|| scalar(dep))
                .ok_or_else(|| shape(&format!("the version of {name}")))?;
            dependencies.insert(name, version);
        }
    }
    Ok(Importer {
        text: digest(&canonical(entry)),
        dependencies,
    })
}

fn shape(what: &str) -> Unusable {
    Unusable(format!("pnpm-lock.yaml has {what} pnpm does not write"))
}

/// A scalar as text (versions may parse as numbers: `'9.0'`, `1.0`).
fn scalar(yaml: &Yaml) -> Option<String> {
    match yaml {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A canonical text as 64 bits (FNV-1a): entries compare by it, and the [`Cache`] keeps
/// 8 bytes instead of the text. Stable across builds, unlike std's hasher, since a cached
/// lockfile is compared with one parsed now.
fn digest(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A value as one deterministic line, so that two entries compare by content.
fn canonical(yaml: &Yaml) -> String {
    let mut out = String::new();
    write_canonical(yaml, &mut out);
    out
}

fn write_canonical(yaml: &Yaml, out: &mut String) {
    match yaml {
        Yaml::Hash(hash) => {
            let mut entries: Vec<(String, &Yaml)> =
                hash.iter().map(|(k, v)| (canonical(k), v)).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (key, value) in entries {
                let _ = write!(out, "{key}:");
                write_canonical(value, out);
                out.push(',');
            }
            out.push('}');
        }
        Yaml::Array(items) => {
            out.push('[');
            for item in items {
                write_canonical(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Yaml::Null | Yaml::BadValue => out.push('~'),
        other => {
            let _ = write!(out, "{:?}", scalar(other).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests;
