# domainguard: one static binary on a distroless base (no shell, no package
# manager), running as the unprivileged "nonroot" user (uid 65532).
#   docker build -t domainguard .
#   docker run --rm domainguard help

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits reuse the module cache layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/domainguard ./cmd/domainguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/domainguard /usr/local/bin/domainguard
USER nonroot:nonroot
# /metrics, /healthz, /readyz. The binary's default is loopback only; a
# container must listen on all interfaces for probes and Prometheus.
ENV DOMAINGUARD_METRICS_ADDR=:9090
EXPOSE 9090
# Probes /readyz on DOMAINGUARD_METRICS_ADDR without a shell. One-shot
# commands (migrate, sweep, import) serve no metrics: disable the check
# for them (compose: healthcheck: disable: true) or override it.
HEALTHCHECK --interval=15s --timeout=6s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/domainguard", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/domainguard"]
CMD ["help"]
