# CPU image that runs the pipeline (`docker run IMAGE` = `unlearn run` on the embedded digits).
# For a GPU, swap the base for an NVIDIA CUDA runtime image with Python 3.11; nothing else changes:
# `device: auto` in params.yaml picks CUDA when the container sees one (docker run --gpus all ...).
FROM python:3.11-slim

RUN apt-get update && apt-get install -y --no-install-recommends git make && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
    && pip install --no-cache-dir -e .
COPY . .
ENV DVC_NO_ANALYTICS=1 PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=60
# dvc needs a git repository; a build context copied without .git gets a fresh one.
RUN (git rev-parse --git-dir >/dev/null 2>&1 || (git init -q && git add -A && \
     git -c user.name=unlearn -c user.email=unlearn@localhost commit -qm "image snapshot"))
CMD ["unlearn", "run"]
