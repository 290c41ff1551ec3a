#!/bin/sh
# The image's entrypoint: prepare the data directory (a volume) from what the build baked in, then run
# the command (`curbside serve` or `curbside run --no-server`) as PID 1's replacement.
#
# - Models: verified at build time and kept read-only under $CURBSIDE_SEED_DIR/models. Curbside reads
#   models from $CURBSIDE_DATA_DIR/models, so that path becomes a symlink to the baked ones (a data
#   directory that already has its own models/ is left alone).
# - Guideline store: seeded at build time (`curbside docs seed`). On the first start with an empty data
#   directory it is copied in, so the app does not embed the bundled corpus again; an existing store is
#   never touched. Two containers starting at once on one volume (engine and app) are safe: the copy
#   goes to a private temporary directory and is renamed into place only if nothing is there yet.
set -eu

seed="${CURBSIDE_SEED_DIR:-/opt/curbside/seed}"
data="${CURBSIDE_DATA_DIR:-/data}"

mkdir -p "$data"

if [ ! -e "$data/models" ] && [ ! -L "$data/models" ] && [ -d "$seed/models" ]; then
    ln -s "$seed/models" "$data/models" 2>/dev/null || [ -e "$data/models" ]
fi

if [ ! -e "$data/guidelines" ] && [ -d "$seed/guidelines" ]; then
    tmp="$(mktemp -d "$data/.guidelines-seed.XXXXXX")"
    cp -R --preserve=mode,timestamps "$seed/guidelines/." "$tmp/"
    # rename(2) refuses to replace a non-empty directory: if another container won the race, drop ours
    mv -T "$tmp" "$data/guidelines" 2>/dev/null || rm -rf "$tmp"
fi

exec "$@"
