#!/bin/sh
# Entrypoint of the production image. The first argument picks the role:
#   web     check the deploy settings, apply migrations, then serve with gunicorn on :8000
#   worker  Celery worker
#   beat    Celery beat (schedule kept in the database, editable in the admin)
# Anything else runs as given: `manage.py shell` (a *.py script runs with python), `bash`, ...
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
  web)
    # Refuse to start with unsafe production settings (default SECRET_KEY, no HTTPS settings...).
    python manage.py check --deploy --fail-level WARNING
    python manage.py migrate --noinput
    exec gunicorn procurement.wsgi:application \
      --bind 0.0.0.0:8000 \
      --workers "${GUNICORN_WORKERS:-3}" \
      --access-logfile - \
      "$@"
    ;;
  worker)
    exec celery -A procurement worker --loglevel=INFO --concurrency "${CELERY_CONCURRENCY:-2}" "$@"
    ;;
  beat)
    exec celery -A procurement beat --loglevel=INFO \
      --scheduler django_celery_beat.schedulers:DatabaseScheduler "$@"
    ;;
  *.py)
    exec python "$role" "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
