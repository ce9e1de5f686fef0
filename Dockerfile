# syntax=docker/dockerfile:1
# Build: docker build -t cometbot .
# Run:   docker run -d --name cometbot -v cometbot-data:/data --env-file .env cometbot

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/cometbot ./cmd/cometbot \
 && mkdir -p /out/data && chown 65532:65532 /out/data

# The final stage is empty but for the static binary, CA certificates and the
# data directory: no shell, no libc (a test runs the binary in an empty root).
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/cometbot /cometbot
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV COMETBOT_DB=/data/cometbot.db \
    COMETBOT_HTTP_ADDR=0.0.0.0:8080 \
    COMETBOT_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/cometbot", "healthcheck"]
ENTRYPOINT ["/cometbot"]
CMD ["run"]
