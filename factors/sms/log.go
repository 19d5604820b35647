package sms

import (
	"context"
	"crypto/rand"
	"log/slog"

	"github.com/otpgate/otpgate/factors"
)

// Log is a development sender that writes each message to a logger instead of
// sending it. The body (and so the code) is logged in clear, the number masked:
// never configure it in production.
type Log struct {
	logger *slog.Logger
}

var _ Sender = (*Log)(nil)

// NewLog returns a log sender writing to logger (slog.Default() when nil).
func NewLog(logger *slog.Logger) *Log {
	if logger == nil {
		logger = slog.Default()
	}
	return &Log{logger: logger}
}

// Send logs msg with its number masked and returns a random id.
func (l *Log) Send(ctx context.Context, msg Message) (string, error) {
	if err := msg.check(); err != nil {
		return "", err
	}
	id := rand.Text()
	l.logger.LogAttrs(ctx, slog.LevelInfo, "sms: message not sent (log sender)",
		slog.String("id", id),
		slog.String("to", factors.MaskPhone(msg.To)),
		slog.String("locale", msg.Locale),
		slog.String("client_id", msg.ClientID),
		slog.String("body", msg.Body),
	)
	return id, nil
}
