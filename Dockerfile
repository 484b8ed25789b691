# syntax=docker/dockerfile:1
# Production image for GPU Procurement Tracker: one image, three roles (web, worker, beat),
# chosen by the entrypoint's first argument. See docker-compose.yml.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=procurement.settings \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Non-root runtime user. It has a home directory because gunicorn puts its control socket in
# ~/.gunicorn/ by default.
RUN groupadd --system app \
    && useradd --system --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app

WORKDIR /app

# pyproject.toml names README.md as the package's readme, so the build reads it.
COPY pyproject.toml requirements.lock README.md ./
COPY procurement/ procurement/
COPY orders/ orders/
COPY templates/ templates/
COPY static/ static/
COPY manage.py ./

# Runtime dependencies only (no [dev] extra), pinned by the lock file.
RUN pip install --no-cache-dir -c requirements.lock . \
    && rm -rf build ./*.egg-info

# Static files are collected into STATIC_ROOT (default: /app/var/static) at build time and served
# by WhiteNoise. The key below exists only for this RUN line; it is not in the image's environment.
# The code and the collected files stay owned by root; `app` can read them but not change them.
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && chmod -R a+rX /app

COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/entrypoint

USER app

EXPOSE 8000

ENTRYPOINT ["entrypoint"]
CMD ["web"]
