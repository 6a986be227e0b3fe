#!/usr/bin/env bash
# The image's entrypoint. Before the gateway serves (`serve` or `python manage.py serve ...`) it
# migrates the database (and the logs database when LOG_SQL_DSN is set) and makes sure root exists,
# as `make run` does; a NODE_TYPE=slave node leaves migrations to the master. `worker` and `beat`
# start Celery; any other command runs as given.
set -euo pipefail

APP_DIR="${APP_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PYTHON="${PYTHON:-python}"
cd "$APP_DIR"

if [ $# -eq 0 ]; then
  set -- serve
fi
case "$1" in
  serve)
    shift
    set -- "$PYTHON" manage.py serve "$@"
    ;;
  worker)
    shift
    set -- "$PYTHON" -m celery -A newapi_site worker -l "${CELERY_LOG_LEVEL:-warning}" "$@"
    ;;
  beat)
    shift
    set -- "$PYTHON" -m celery -A newapi_site beat -l "${CELERY_LOG_LEVEL:-warning}" \
      -s "${DATA_DIR:-/data}/celerybeat-schedule" "$@"
    ;;
esac

serves=false
for ((i = 1; i < $#; i++)); do
  if [ "${!i##*/}" = "manage.py" ]; then
    next=$((i + 1))
    [ "${!next}" = "serve" ] && serves=true
    break
  fi
done

if $serves && [ "${NODE_TYPE:-master}" != "slave" ]; then
  echo "entrypoint: migrating the database" >&2
  "$PYTHON" manage.py migrate --noinput
  if [ -n "${LOG_SQL_DSN:-}" ]; then
    "$PYTHON" manage.py migrate --noinput --database logs
  fi
  "$PYTHON" manage.py ensure_root
fi

# exec: the server becomes PID 1's child directly, so `docker stop`'s SIGTERM reaches it.
exec "$@"
