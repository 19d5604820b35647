package sms_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
)

const body = "123456 is your otpgate sign-in code. It expires in 5 minutes.\n\n@localhost:8080 #123456"

func TestOutboxSendsToTheStore(t *testing.T) {
	store := memory.New()
	defer store.Close()
	sentAt := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	o := sms.NewOutbox(store, 2, func() time.Time { return sentAt })
	ctx := context.Background()

	var ids []string
	for _, to := range []string{"+33612345678", "+33612345679", "+12015550123"} {
		id, err := o.Send(ctx, sms.Message{To: to, Body: body, Locale: "fr", ClientID: "app"})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		ids = append(ids, id)
	}
	if ids[0] == "" || ids[0] == ids[1] || ids[1] == ids[2] {
		t.Errorf("message ids %q: want distinct random ids", ids)
	}
	msgs, err := store.ListOutbox(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Newest first, only max kept.
	want := []storage.OutboxMessage{
		{ID: ids[2], To: "+12015550123", Body: body, Locale: "fr", ClientID: "app", SentAt: sentAt},
		{ID: ids[1], To: "+33612345679", Body: body, Locale: "fr", ClientID: "app", SentAt: sentAt},
	}
	if len(msgs) != len(want) {
		t.Fatalf("outbox holds %d messages, want %d", len(msgs), len(want))
	}
	for i := range want {
		if msgs[i] != want[i] {
			t.Errorf("outbox[%d] = %+v, want %+v", i, msgs[i], want[i])
		}
	}
}

func TestSendersRefuseIncompleteMessages(t *testing.T) {
	store := memory.New()
	defer store.Close()
	senders := map[string]sms.Sender{
		"outbox": sms.NewOutbox(store, 0, nil),
		"log":    sms.NewLog(slog.New(slog.DiscardHandler)),
	}
	for name, s := range senders {
		for _, m := range []sms.Message{{Body: body}, {To: "+33612345678"}} {
			if _, err := s.Send(context.Background(), m); err == nil {
				t.Errorf("%s: Send(%+v) succeeded", name, m)
			}
		}
	}
	if msgs, _ := store.ListOutbox(context.Background(), 0); len(msgs) != 0 {
		t.Errorf("outbox holds %d messages", len(msgs))
	}
}

func TestOutboxStoreErrorMasksTheNumber(t *testing.T) {
	store := memory.New()
	store.Close()
	_, err := sms.NewOutbox(store, 10, nil).Send(context.Background(), sms.Message{To: "+33612345678", Body: body})
	if !errors.Is(err, memory.ErrClosed) {
		t.Fatalf("Send on a closed store: err = %v, want memory.ErrClosed", err)
	}
	if strings.Contains(err.Error(), "+33612345678") || !strings.Contains(err.Error(), "+33 6 •• •• •• 78") {
		t.Errorf("error %q: want the number masked", err)
	}
}

func TestLogMasksTheNumber(t *testing.T) {
	var buf bytes.Buffer
	l := sms.NewLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	id, err := l.Send(context.Background(), sms.Message{To: "+33612345678", Body: body, Locale: "en", ClientID: "app"})
	if err != nil || id == "" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log record %q: %v", buf.String(), err)
	}
	if rec["to"] != "+33 6 •• •• •• 78" || rec["body"] != body || rec["id"] != id || rec["client_id"] != "app" {
		t.Errorf("log record = %v", rec)
	}
	if strings.Contains(buf.String(), "612345678") {
		t.Errorf("log record %q contains the full number", buf.String())
	}
}
