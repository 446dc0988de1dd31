#!/usr/bin/env bash
set -euo pipefail
part="${1:-patch}"
current=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IFS=. read -r major minor patch <<<"$current"
case "$part" in
  major) major=$((major + 1)); minor=0; patch=0 ;;
  minor) minor=$((minor + 1)); patch=0 ;;
  patch) patch=$((patch + 1)) ;;
esac
next="$major.$minor.$patch"
sed -i.bak "s/^version = \".*\"/version = \"$next\"/" pyproject.toml && rm pyproject.toml.bak
git commit -am "Release $next"
git tag -s "v$next" -m "v$next"
echo "$current -> $next"
