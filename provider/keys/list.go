package keys

import (
	"context"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// Info is the public description of a signing key: never its private half.
type Info struct {
	ID        string    `json:"kid"`
	Algorithm string    `json:"alg"`
	State     string    `json:"state"` // storage.KeyCurrent or storage.KeyRetired
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // retired keys: when they leave the JWKS
	// Signing is true for the one current key per algorithm that signs new
	// tokens (the newest, when instances raced and left several current).
	Signing bool `json:"signing"`
}

// List returns the published keys, newest first, read from the store rather
// than from the cache: administrators and the rotation scheduler must see what
// other instances did a moment ago. Keys the store lost and this instance
// knew are restored first, as on any refresh. A retired key whose expiry has
// passed by the Manager's clock is left out, as it is from the JWKS.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	s, err := m.reload(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(s.jwks))
	for _, jwk := range s.jwks { // the published keys, newest first
		pk := s.published[jwk.KeyID]
		info := Info{
			ID:        pk.ID,
			Algorithm: pk.Algorithm,
			State:     pk.State,
			CreatedAt: pk.CreatedAt,
		}
		if pk.State == storage.KeyRetired {
			info.ExpiresAt = pk.ExpiresAt
		}
		if cur, ok := s.current[pk.Algorithm]; ok && cur.ID == pk.ID {
			info.Signing = true
		}
		out = append(out, info)
	}
	return out, nil
}
