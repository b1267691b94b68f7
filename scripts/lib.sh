# Shared shell helpers for kiln's scripts: cache location and logging.
kiln_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kiln_cache=${KILN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}
kiln_log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
kiln_die() { kiln_log "error: $*"; exit 1; }
