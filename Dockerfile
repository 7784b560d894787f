# CPU image that runs the pipeline (`docker run IMAGE` = `unlearn run` on the embedded digits), as a non-root user.
#
#   docker build -t unlearn .                                   # CPU wheels of torch
#   docker build -t unlearn:cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#   docker run --gpus all unlearn:cuda                          # `device: auto` picks CUDA when the container sees one
#
# The CUDA wheels carry their own CUDA runtime, so the same slim Python base serves a GPU: the host needs only the
# NVIDIA driver and the container toolkit. EXTRAS=team (docker-compose.yml) adds the PostgreSQL driver.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG EXTRAS=team
RUN apt-get update && apt-get install -y --no-install-recommends git make && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 unlearn
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX" torch==2.14.1 torchvision==0.29.1 \
    && pip install --no-cache-dir -e ".[$EXTRAS]"
COPY . .
ENV DVC_NO_ANALYTICS=1 PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=60
# dvc needs a git repository; a build context copied without .git gets a fresh one. The volumes that
# docker-compose.yml mounts (data/requests, data/ledger) exist here so they start owned by the user.
RUN (git rev-parse --git-dir >/dev/null 2>&1 || (git init -q && git add -A && \
     git -c user.name=unlearn -c user.email=unlearn@localhost commit -qm "image snapshot")) \
    && mkdir -p data/requests/inbox data/ledger && chown -R unlearn:unlearn /app
USER unlearn
CMD ["unlearn", "run"]
