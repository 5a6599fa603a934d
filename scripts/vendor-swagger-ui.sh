#!/usr/bin/env bash
# Copies Swagger UI from the npm package swagger-ui-dist into server/apidocs/assets/, unchanged,
# with its licence and notices, so that /docs needs no CDN (a school network may have no internet).
# Run it by hand to update (npm reaches the registry); commit the result. Usage:
#   scripts/vendor-swagger-ui.sh 5.36.0
set -euo pipefail

version="${1:?usage: $0 VERSION (of the npm package swagger-ui-dist)}"
dest="$(cd "$(dirname "$0")/.." && pwd)/server/apidocs/assets"
files=(swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png
       LICENSE NOTICE)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@${version}" >/dev/null && tar xzf ./*.tgz)
for f in "${files[@]}"; do cp "$work/package/$f" "$dest/$f"; done
(cd "$dest" && sha256sum "${files[@]}" > SHA256SUMS)
cat > "$dest/SOURCE" <<END
swagger-ui-dist ${version} (npm registry), Apache-2.0: see LICENSE and NOTICE; the bundled
libraries' licences are in swagger-ui-bundle.js.LICENSE.txt. Files unchanged, checked by
SHA256SUMS (tests/unit/test_api_docs.py). Update: scripts/vendor-swagger-ui.sh VERSION
END
echo "server/apidocs/assets: swagger-ui-dist ${version}"
