# One image for every service of docker-compose.yml (provision, migrate, llm, app, api, worker); docs/deploy.md.
# Layer order keeps rebuilds cheap: the dependencies are installed from pyproject.toml and a stub package
# first, so a code change only re-runs the final COPY. llama-server (minutes of compiling) is built by the
# provision service into the models volume, once per llama.cpp version and flags.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake ninja-build git \
    && rm -rf /var/lib/apt/lists/*
# A non-root user runs every service; /data and /models are the volumes (owned by it, so a new named
# volume starts with that owner).
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin mmos \
    && mkdir -p /app /data /models && chown mmos:mmos /app /data /models
WORKDIR /app
# 1. dependencies only: pyproject.toml + empty packages (editable install: the real code replaces the stubs)
COPY --chown=mmos:mmos pyproject.toml README.md ./
RUN mkdir -p mmos_core workers && touch mmos_core/__init__.py workers/__init__.py \
    && pip install --no-cache-dir -e ".[local]" \
    && chown -R mmos:mmos /app
# 2. the code (.dockerignore keeps .git, .venv, data and results out)
COPY --chown=mmos:mmos . .
USER mmos
ENV MMOS_DATA_DIR=/data MMOS_CACHE_DIR=/models PYTHONUNBUFFERED=1
CMD ["mmos", "--help"]
