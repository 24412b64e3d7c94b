#!/usr/bin/env bash
# Fetch catalogued model files into models/cache/NAME/FILE.
# See models/README.md for the catalogue format and mirror lookup order.
set -euo pipefail

PROG=fetch.sh
MODELS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(dirname "$MODELS_DIR")"
CATALOG="$MODELS_DIR/catalog.tsv"
CACHE="$MODELS_DIR/cache"

die() { echo "$PROG: $*" >&2; exit 1; }

usage() {
    cat <<EOF
usage: models/fetch.sh NAME [NAME...]
       models/fetch.sh --list
       models/fetch.sh -h | --help

Puts every file of each catalogue entry NAME at models/cache/NAME/FILE,
verified against the sha256 in models/catalog.tsv.

Sources, in order:
  1. local mirror MIRROR/NAME/FILE (symlinked into the cache), where MIRROR is
     \$ROTOR_MODELS if set, else ../shared/models next to the repository root
     (only if that directory exists);
  2. the catalogue URL (curl or wget); url "-" means mirror-only.

  --list      print the catalogue names, one per line
  -h, --help  show this help
EOF
}

[[ -r "$CATALOG" ]] || die "cannot read catalogue $CATALOG"

# Parsed catalogue rows (parallel arrays).
C_NAME=() C_FILE=() C_SHA=() C_URL=()
lineno=0
while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    line="${line%$'\r'}"
    [[ -z "${line//[[:space:]]/}" || "$line" == \#* ]] && continue
    IFS=$'\t' read -r -a f <<<"$line"
    [[ "${f[0]}" == name && "${f[1]:-}" == file ]] && continue   # header
    if [[ ${#f[@]} -ne 4 || "${f[1]}" == */* || "${f[1]}" == .* \
          || ! "${f[2]}" =~ ^[0-9a-f]{64}$ ]]; then
        die "$CATALOG:$lineno: malformed catalogue line"
    fi
    C_NAME+=("${f[0]}") C_FILE+=("${f[1]}") C_SHA+=("${f[2]}") C_URL+=("${f[3]}")
done <"$CATALOG"

known_names() {
    local i seen=" "
    for i in "${!C_NAME[@]}"; do
        if [[ "$seen" != *" ${C_NAME[i]} "* ]]; then
            seen+="${C_NAME[i]} "
            echo "${C_NAME[i]}"
        fi
    done
}

# ---- arguments --------------------------------------------------------------
if [[ $# -eq 0 ]]; then
    usage >&2
    exit 2
fi
NAMES=()
for arg in "$@"; do
    case "$arg" in
        -h|--help) usage; exit 0 ;;
        --list)    known_names; exit 0 ;;
        -*)        echo "$PROG: unknown option '$arg' (see --help)" >&2; exit 2 ;;
        *)         NAMES+=("$arg") ;;
    esac
done
KNOWN="$(known_names | tr '\n' ' ')"
for n in "${NAMES[@]}"; do
    if [[ " $KNOWN" != *" $n "* ]]; then
        echo "$PROG: unknown model '$n' (known: ${KNOWN% })" >&2
        exit 2
    fi
done

# ---- mirror -----------------------------------------------------------------
# An explicitly set ROTOR_MODELS always wins, even if it does not exist.
MIRROR=""
if [[ -n "${ROTOR_MODELS:-}" ]]; then
    if [[ -d "$ROTOR_MODELS" ]]; then
        MIRROR="$(cd "$ROTOR_MODELS" && pwd -P)"
    fi
elif [[ -d "$REPO_ROOT/../shared/models" ]]; then
    MIRROR="$(cd "$REPO_ROOT/../shared/models" && pwd -P)"
fi

# ---- helpers ----------------------------------------------------------------
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

TMP=""
cleanup() { [[ -n "$TMP" ]] && rm -f "$TMP"; return 0; }
trap cleanup EXIT

download() { # url dest
    if command -v curl >/dev/null 2>&1; then
        curl -fL --retry 3 -sS -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q --tries=3 -O "$2" "$1"
    else
        die "neither curl nor wget is available to download $1"
    fi
}

fetch_one() { # name file sha url
    local name="$1" file="$2" sha="$3" url="$4"
    local dir="$CACHE/$name" dest="$CACHE/$name/$file" what actual

    if [[ -e "$dest" ]] && [[ "$(sha_of "$dest")" == "$sha" ]]; then
        echo "$name/$file: cached" >&2
        return 0
    fi
    mkdir -p "$dir"
    rm -f "$dest"   # stale, corrupt or dangling entry

    if [[ -n "$MIRROR" && -f "$MIRROR/$name/$file" ]]; then
        ln -sf "$MIRROR/$name/$file" "$dest"
        what="linked from mirror"
    elif [[ "$url" == "-" ]]; then
        die "$name/$file: not in the local mirror and no public download URL"
    else
        TMP="$(mktemp "$dir/.$file.XXXXXX")"
        download "$url" "$TMP" || die "$name/$file: download failed from $url"
        chmod 0644 "$TMP"
        mv -f "$TMP" "$dest"
        TMP=""
        what="downloaded"
    fi

    actual="$(sha_of "$dest")"
    if [[ "$actual" != "$sha" ]]; then
        rm -f "$dest"
        die "$name/$file: sha256 mismatch (expected $sha, got $actual)"
    fi
    echo "$name/$file: $what" >&2
}

for n in "${NAMES[@]}"; do
    for i in "${!C_NAME[@]}"; do
        [[ "${C_NAME[i]}" == "$n" ]] || continue
        fetch_one "${C_NAME[i]}" "${C_FILE[i]}" "${C_SHA[i]}" "${C_URL[i]}"
    done
done
