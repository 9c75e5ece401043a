# fal-emulator as a container image: the emulator, its HTTPS proxy for fal's hostnames, and its state in a volume.
#
#   podman build -t fal-emulator .        (or docker build)
#   podman run -d --name fal-emulator -p 127.0.0.1:8470-8472:8470-8472 -v fal-emulator-state:/state fal-emulator
#   podman logs fal-emulator              the control-plane token: inside the container it listens on 0.0.0.0
#
# BASE is any image with python3 (>= 3.10) and its venv module; the default is the official slim one.
ARG BASE=docker.io/library/python:3.12-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md LICENSE /src/
COPY emulator /src/emulator
COPY contracts /src/contracts
COPY openapi /src/openapi
COPY fixtures /src/fixtures
RUN python3 -m venv /opt/fal-emulator \
 && /opt/fal-emulator/bin/pip install --quiet /src \
 && rm -rf /src \
 && useradd --system --uid 10001 --home-dir /state --no-create-home fal \
 && mkdir /state && chown fal /state

USER fal
ENV PATH=/opt/fal-emulator/bin:$PATH \
    FAL_EMULATOR_HOST=0.0.0.0 \
    FAL_EMULATOR_STATE_DIR=/state
VOLUME ["/state"]
# 8470 plain HTTP, 8471 HTTPS, 8472 the HTTPS proxy for fal's hostnames
EXPOSE 8470 8471 8472
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8470/_emulator/health', timeout=2)"]
ENTRYPOINT ["fal-emulator"]
CMD ["serve"]
