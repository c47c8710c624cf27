#!/bin/sh
# intake's one entrypoint, for every service of the container (Dockerfile, compose.yaml):
#
#   app        wait for the database, "db upgrade" (MIGRATE_ON_START=0 skips it), then gunicorn
#   worker     wait for the database at the migrations' head, then the e-mail sender
#   scheduler  wait for the database at the migrations' head, then the periodic jobs
#   flask ...  any flask command, e.g.  flask users create --email you@example.org --role admin
#
# It compiles nothing at run time: the image carries the compiled translation catalogues (and the
# app refuses to start without them). Settings come from the environment (deploy/.env.example).
# tests/test_entrypoint.py runs this script against the local PostgreSQL and Redis.
set -eu

cd "$(dirname "$0")/.."
wait_seconds="${WAIT_FOR_DATABASE_SECONDS:-60}"
role="${1:-app}"
if [ $# -gt 0 ]; then shift; fi

case "$role" in
    app)
        flask --app intake wait-for-database --timeout "$wait_seconds"
        if [ "${MIGRATE_ON_START:-1}" = 1 ]; then
            flask --app intake db upgrade
        fi
        exec gunicorn --config gunicorn.conf.py "$@"
        ;;
    worker)
        flask --app intake wait-for-database --timeout "$wait_seconds" --at-head
        exec flask --app intake outbox send --watch "$@"
        ;;
    scheduler)
        flask --app intake wait-for-database --timeout "$wait_seconds" --at-head
        exec flask --app intake jobs schedule "$@"
        ;;
    flask)
        exec flask --app intake "$@"
        ;;
    *)
        echo "usage: docker-entrypoint.sh app|worker|scheduler|flask ARGS... (not: $role)" >&2
        exit 64
        ;;
esac
