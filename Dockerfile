# smtp-reply-exporter: the project's image, built from this repository.
#
#   SMTP_REPLY_EXPORTER_PURE=1 python3 -m pip wheel -w wheels . setuptools mypy
#                                                    # the dependencies as wheels (the build needs no index)
#   podman build -t smtp-reply-exporter:0.1.0 .      # or docker build; --target journal for journalctl
#
# BASE is any Debian bookworm image with python3 and python3-venv; without a registry, make it with
#   mmdebstrap --variant=minbase --include=python3,python3-venv bookworm base.tar
#   podman import base.tar localhost/debian-python:bookworm
# The default image holds the Python interpreter, its standard library, the shared libraries they load
# and the exporter: no shell, no package manager. It runs as nobody (65534).

ARG BASE=localhost/debian-python:bookworm

FROM ${BASE} AS build
# A C compiler and Python's headers: setup.py compiles the hot path with mypyc (the image ships that variant).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev python3-dev >/dev/null
COPY wheels/ /wheels/
COPY pyproject.toml setup.py README.md /src/
COPY exporter/ /src/exporter/
# Build the wheel from this source tree, install it and its dependencies into a virtual environment,
# and gather the runtime's file system (container/rootfs.sh).
RUN python3 -m venv /build \
 && /build/bin/pip wheel --quiet --no-index --find-links /wheels --no-deps --wheel-dir /dist /src \
 && python3 -m venv --without-pip /opt/smtp-reply-exporter \
 && /build/bin/pip --python /opt/smtp-reply-exporter/bin/python3 install --quiet --no-index \
      --find-links /wheels /dist/*.whl
COPY container/rootfs.sh /rootfs.sh
RUN sh /rootfs.sh /rootfs

# journalctl for --log.journal: Debian's python3 and systemd, with a shell (apt-get needs a network).
FROM ${BASE} AS journal
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/smtp-reply-exporter /opt/smtp-reply-exporter
ENV PATH=/opt/smtp-reply-exporter/bin:/usr/bin:/bin PYTHONDONTWRITEBYTECODE=1
USER 65534:65534
EXPOSE 10125
ENTRYPOINT ["smtp-reply-exporter"]
CMD ["serve"]

FROM scratch AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="smtp-reply-exporter" \
      org.opencontainers.image.description="Prometheus exporter of the SMTP reply codes in mail server logs" \
      org.opencontainers.image.source="https://github.com/smtp-reply-exporter/smtp-reply-exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /rootfs/ /
ENV PATH=/opt/smtp-reply-exporter/bin PYTHONDONTWRITEBYTECODE=1
USER 65534:65534
EXPOSE 10125
ENTRYPOINT ["smtp-reply-exporter"]
CMD ["serve"]
