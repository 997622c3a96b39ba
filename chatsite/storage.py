"""Static files with hashed names, compressed, for whitenoise to serve forever-cached.

The page's scripts are ES modules that import one another (`import … from "./socket.js"`).
Django rewrites those imports to the hashed names only when asked to; without it a new
`chat.<hash>.js` would import whatever `socket.js` the browser still has cached, the old one
for a minute after a deploy.
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
