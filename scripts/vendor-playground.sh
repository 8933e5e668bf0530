#!/bin/sh
# Vendors the playground's third-party files (GraphiQL, React, ReactDOM) from
# the npm registry, pinned, with their licences, into
# internal/web/static/playground/vendor (or the directory given), and writes
# SHA256SUMS. CI runs it into a temporary directory and compares: the
# committed files are exactly what the registry serves for these versions.
#
#   scripts/vendor-playground.sh [dir]
set -eu

dir=${1:-"$(dirname "$0")/../internal/web/static/playground/vendor"}
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name@version  file-in-package  vendored-name
files='
graphiql@4.1.2 graphiql.min.js graphiql.min.js
graphiql@4.1.2 graphiql.min.css graphiql.min.css
graphiql@4.1.2 LICENSE LICENSE.graphiql
react@18.2.0 umd/react.production.min.js react.production.min.js
react@18.2.0 LICENSE LICENSE.react
react-dom@18.2.0 umd/react-dom.production.min.js react-dom.production.min.js
react-dom@18.2.0 LICENSE LICENSE.react-dom
'

echo "$files" | while read -r pkg src dst; do
  [ -n "$pkg" ] || continue
  unpacked="$work/$pkg"
  if [ ! -d "$unpacked" ]; then
    mkdir -p "$unpacked"
    (cd "$unpacked" && npm pack "$pkg" --silent >/dev/null && tar -xzf ./*.tgz)
    got=$(node -p "const p=require('$unpacked/package/package.json'); p.name+'@'+p.version")
    [ "$got" = "$pkg" ] || { echo "npm gave $got for $pkg" >&2; exit 1; }
  fi
  cp "$unpacked/package/$src" "$dir/$dst"
  chmod 0644 "$dir/$dst"
done

(cd "$dir" && LC_ALL=C ls | grep -v '^SHA256SUMS$' | xargs sha256sum > SHA256SUMS)
echo "vendored into $dir:"
cat "$dir/SHA256SUMS"
