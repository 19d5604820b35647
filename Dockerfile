# Build: a static binary, no cgo.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/otpgate ./cmd/otpgate

# Run: distroless static, as the built-in non-root user (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/otpgate /otpgate
USER nonroot:nonroot
EXPOSE 8080 8081
ENTRYPOINT ["/otpgate"]
CMD ["serve", "--config", "/etc/otpgate/otpgate.yaml"]
