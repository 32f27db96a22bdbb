# Smoke-mode stand-in for Dockerfile: exercises the harness's buildah path (import,
# cold build, cached rebuild, sizing) in seconds, on a tiny image without a shell.
ARG BASE=localhost/bink-bench-smoke-base:latest
FROM ${BASE} AS build
COPY smoke.txt /stage/smoke.txt

FROM ${BASE}
COPY --from=build /stage/smoke.txt /smoke.txt
CMD ["/smoke.txt"]
