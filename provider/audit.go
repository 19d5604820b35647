package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
)

// Audit events: every change made through the admin API, or by the key
// rotation scheduler, writes one.
const (
	eventClientCreated       = "admin.client.created"
	eventClientUpdated       = "admin.client.updated"
	eventClientDeleted       = "admin.client.deleted"
	eventClientSecretRotated = "admin.client.secret_rotated"
	eventKeysRotated         = "admin.keys.rotated"
)

// actorScheduler is who rotates keys when the rotation interval elapses.
const actorScheduler = "key-rotation-scheduler"

// adminActor names the holder of an admin token in audit events without
// revealing it: "admin-token:" and the first 12 hex digits of its SHA-256.
// The token carries far too much entropy for the digest to help guessing it,
// and the fingerprint tells two tokens apart after the token is rotated.
func adminActor(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "admin-token:" + hex.EncodeToString(sum[:6])
}

// audit writes one structured audit event at info level: what happened
// (event and attrs), who did it (actor) and when (at). Callers pass ids,
// names and lists of changed fields; never a secret or a hash of one.
func (p *Provider) audit(ctx context.Context, event, actor string, attrs ...slog.Attr) {
	all := make([]slog.Attr, 0, len(attrs)+4)
	all = append(all,
		slog.Bool("audit", true),
		slog.String("event", event),
		slog.String("actor", actor),
		slog.Time("at", p.now().UTC()),
	)
	all = append(all, attrs...)
	p.log.LogAttrs(ctx, slog.LevelInfo, "audit: "+event, all...)
}
