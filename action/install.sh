#!/usr/bin/env bash
# The install Action's steps (action.yml at the repository root), as a script so that
# scripts/test-action runs them here against a loopback server:
#   action/install.sh resolve   the version (input `version`, or the first line of the
#                               file `version-file`), the runner's target and the
#                               install directory, to $GITHUB_OUTPUT;
#   action/install.sh install   downloads deploy-vX.Y.Z-TARGET.tar.gz and SHA256SUMS from
#                               the release, refuses an archive whose SHA-256 is not the
#                               one SHA256SUMS lists, unpacks it into the directory and
#                               puts the directory on $GITHUB_PATH. A directory already
#                               holding that version (restored by actions/cache) is used
#                               as it is.
# Inputs come as the Action passes them: INPUT_VERSION, INPUT_VERSION_FILE,
# INPUT_BASE_URL (default: the releases of the repository the Action comes from);
# `install` reads DEPLOY_VERSION, DEPLOY_TARGET and DEPLOY_DIR (what `resolve` wrote).
# The runner's own variables: RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, GITHUB_OUTPUT,
# GITHUB_PATH, GITHUB_ACTION_PATH.
set -euo pipefail

die() {
    echo "::error::install deploy: $*" >&2
    exit 1
}

# The release target built for the runner (release.yml's matrix).
target_for() {
    case "$1/$2" in
        Linux/X64) echo x86_64-unknown-linux-gnu ;;
        Linux/ARM64) echo aarch64-unknown-linux-gnu ;;
        macOS/X64) echo x86_64-apple-darwin ;;
        macOS/ARM64) echo aarch64-apple-darwin ;;
        *) die "no release build for $1 $2 (there are Linux and macOS, x86_64 and arm64)" ;;
    esac
}

# `v0.2.0` from `0.2.0`, `v0.2.0` or `deploy 0.2.0` (what `deploy --version` prints).
normalise() {
    local version="${1#deploy }"
    version="${version#v}"
    [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] ||
        die "\"$1\" is not a release version: pin one, e.g. version: v0.2.0 (or a version-file holding it)"
    echo "v$version"
}

resolve() {
    local version="${INPUT_VERSION:-}"
    if [[ -z "$version" && -n "${INPUT_VERSION_FILE:-}" ]]; then
        [[ -f "$INPUT_VERSION_FILE" ]] || die "version-file $INPUT_VERSION_FILE does not exist"
        version="$(head -n 1 "$INPUT_VERSION_FILE" | tr -d '[:space:]')"
    fi
    [[ -n "$version" ]] || die "give the version to install: input version (e.g. v0.2.0) or version-file"
    version="$(normalise "$version")"
    local target
    target="$(target_for "${RUNNER_OS:?}" "${RUNNER_ARCH:?}")"
    local dir="${RUNNER_TOOL_CACHE:?}/deploy/$version/$target"
    {
        echo "version=$version"
        echo "target=$target"
        echo "dir=$dir"
    } >>"${GITHUB_OUTPUT:?}"
    echo "install deploy: $version for $target into $dir" >&2
}

# Where releases are: the input, else the repository the Action was taken from.
base_url() {
    if [[ -n "${INPUT_BASE_URL:-}" ]]; then
        echo "${INPUT_BASE_URL%/}"
        return
    fi
    local repo="${GITHUB_ACTION_REPOSITORY:-}"
    if [[ -z "$repo" && "${GITHUB_ACTION_PATH:-}" == */_actions/*/*/* ]]; then
        # .../_actions/OWNER/REPO/REF (composite actions may see an empty
        # GITHUB_ACTION_REPOSITORY).
        repo="$(sed -E 's#.*/_actions/([^/]+)/([^/]+)/.*#\1/\2#' <<<"$GITHUB_ACTION_PATH")"
    fi
    [[ -n "$repo" ]] || die "cannot tell which repository's releases to use: set the input base-url"
    echo "${GITHUB_SERVER_URL:-https://github.com}/$repo/releases/download"
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

install() {
    local version="${DEPLOY_VERSION:?}" target="${DEPLOY_TARGET:?}" dir="${DEPLOY_DIR:?}"
    if [[ -x "$dir/deploy" ]] && [[ "$("$dir/deploy" --version)" == "deploy ${version#v}" ]]; then
        echo "install deploy: $version already in $dir (cache)" >&2
    else
        local name="deploy-$version-$target"
        local url
        url="$(base_url)/$version"
        local work
        work="$(mktemp -d)"
        # shellcheck disable=SC2064 # expand now: $work is local
        trap "rm -rf '$work'" EXIT
        echo "install deploy: downloading $url/$name.tar.gz" >&2
        curl -fsSL --retry 3 -o "$work/SHA256SUMS" "$url/SHA256SUMS" ||
            die "cannot download $url/SHA256SUMS (is $version released?)"
        curl -fsSL --retry 3 -o "$work/$name.tar.gz" "$url/$name.tar.gz" ||
            die "cannot download $url/$name.tar.gz (is $version released for $target?)"
        local expected actual
        expected="$(awk -v file="$name.tar.gz" '$2 == file || $2 == "*" file { print $1 }' "$work/SHA256SUMS")"
        [[ -n "$expected" ]] || die "SHA256SUMS of $version does not list $name.tar.gz"
        actual="$(sha256_of "$work/$name.tar.gz")"
        [[ "$actual" == "$expected" ]] ||
            die "$name.tar.gz does not match SHA256SUMS (SHA-256 $actual, listed $expected): refusing it"
        tar -xzf "$work/$name.tar.gz" -C "$work"
        mkdir -p "$dir"
        cp -R "$work/$name"/. "$dir/"
        chmod +x "$dir/deploy"
    fi
    local printed
    printed="$("$dir/deploy" --version)" || die "$dir/deploy does not run on this runner"
    [[ "$printed" == "deploy ${version#v}" ]] || die "$dir/deploy says \"$printed\", not $version"
    echo "$dir" >>"${GITHUB_PATH:?}"
    echo "path=$dir/deploy" >>"${GITHUB_OUTPUT:?}"
    echo "install deploy: $printed at $dir/deploy" >&2
}

case "${1:-}" in
    resolve) resolve ;;
    install) install ;;
    *)
        echo "usage: $0 resolve|install" >&2
        exit 2
        ;;
esac
