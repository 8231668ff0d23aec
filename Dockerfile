# Image for docker-compose.yml (app, worker, migrate, llm). Model files go to the /models volume.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mmos_core mmos_core
COPY workers workers
RUN pip install --no-cache-dir -e ".[local]"
COPY . .
ENV MMOS_DATA_DIR=/data MMOS_CACHE_DIR=/models
