// Package orangetest is a fake of Orange's One Time Password Authentication
// API (challenge/v1) and of the OAuth token endpoint in front of it, as
// ref/sms-apis.md infers them: it makes each code, "texts" it (keeps the
// message for the test to read) and validates answers. It checks the shape of
// every request it gets and reports a wrong one as a test error.
//
// factors/orange's tests and the provider's end-to-end login through the
// orange factor use it. It imports only the standard library and testing;
// nothing outside tests may import it.
package orangetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"
)

// The credentials and ids the fake accepts.
const (
	ClientID     = "otp-app"
	ClientSecret = "otp-secret-hunter2"
	Service      = "svc-123"
	PartnerID    = "partner-456"
)

// Operations, as passed to the hooks set with SetFailure and SetHook.
const (
	OpCreate   = "create"
	OpValidate = "validate"
)

// Message is one SMS the fake "sent": the create request and the code it made.
type Message struct {
	ChallengeID string
	MSISDN      string
	Country     string
	Text        string // the message with %OTP% replaced by Code
	Code        string
	SenderName  string
}

// Validation is one answer the fake was asked to judge.
type Validation struct {
	ChallengeID string
	Code        string
	Info        string
}

// Server is the fake. Its counters count requests as they arrive.
type Server struct {
	URL string
	// Tokens, Creates and Validations count token requests, challenges
	// created and answers judged (failed ones included).
	Tokens, Creates, Validations atomic.Int32

	t   testing.TB
	srv *httptest.Server

	mu          sync.Mutex
	issued      map[string]bool
	challenges  map[string]*challenge
	messages    []Message
	validations []Validation
	emptyResult bool
	reusable    bool
	failure     func(op string) int
	hook        func(op string)
}

type challenge struct {
	code string
	used bool
}

// New starts a fake for t, closed when t ends.
func New(t testing.TB) *Server {
	s := &Server{t: t, issued: map[string]bool{}, challenges: map[string]*challenge{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// SetEmptyResult makes a wrong answer a 200 without a result instead of a 400.
func (s *Server) SetEmptyResult(on bool) { s.mu.Lock(); s.emptyResult = on; s.mu.Unlock() }

// SetReusable makes a right code work again and again, so that only otpgate
// keeps it single-use.
func (s *Server) SetReusable(on bool) { s.mu.Lock(); s.reusable = on; s.mu.Unlock() }

// SetFailure answers an operation with the status fail returns, when it is
// not 0 (nil: never).
func (s *Server) SetFailure(fail func(op string) int) { s.mu.Lock(); s.failure = fail; s.mu.Unlock() }

// SetHook calls hook with the operation before answering it (after counting
// it); a hook may block to hold the answer back.
func (s *Server) SetHook(hook func(op string)) { s.mu.Lock(); s.hook = hook; s.mu.Unlock() }

// RevokeTokens makes every token issued so far answer 401.
func (s *Server) RevokeTokens() { s.mu.Lock(); clear(s.issued); s.mu.Unlock() }

// Messages returns the SMS sent so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Answers returns the answers judged so far, oldest first.
func (s *Server) Answers() []Validation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Validation(nil), s.validations...)
}

// LastMessage returns the newest SMS, failing t when none was sent.
func (s *Server) LastMessage(t testing.TB) Message {
	t.Helper()
	msgs := s.Messages()
	if len(msgs) == 0 {
		t.Fatal("orangetest: no SMS sent")
	}
	return msgs[len(msgs)-1]
}

// LastCode returns the code of the newest SMS sent to msisdn (E.164),
// failing t when there is none.
func (s *Server) LastCode(t testing.TB, msisdn string) string {
	t.Helper()
	msgs := s.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].MSISDN == msisdn {
			return msgs[i].Code
		}
	}
	t.Fatalf("orangetest: no SMS sent to %s", msisdn)
	return ""
}

type input struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type body struct {
	Challenge struct {
		Method    string  `json:"method"`
		Country   string  `json:"country"`
		Service   string  `json:"service"`
		PartnerID string  `json:"partnerId"`
		Inputs    []input `json:"inputs"`
	} `json:"challenge"`
}

func (b body) input(typ string) (string, bool) {
	for _, in := range b.Challenge.Inputs {
		if in.Type == typ {
			return in.Value, true
		}
	}
	return "", false
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func requestError(messageID, text string) map[string]any {
	return map[string]any{"requestError": map[string]any{"serviceException": map[string]any{"messageId": messageID, "text": text}}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth/v3/token" {
		s.token(w, r)
		return
	}
	t := s.t
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
		t.Errorf("orangetest: challenge request %s %s with Content-Type %q, Accept %q", r.Method, r.URL.Path,
			r.Header.Get("Content-Type"), r.Header.Get("Accept"))
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	valid := s.issued[tok]
	s.mu.Unlock()
	if !valid {
		reply(w, http.StatusUnauthorized, map[string]any{"code": 42, "message": "Expired credentials"})
		return
	}
	data, _ := io.ReadAll(r.Body)
	var b body
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || b.Challenge.Method != "OTP-SMS-AUTH" || !alpha3(b.Challenge.Country) ||
		b.Challenge.Service != Service || b.Challenge.PartnerID != PartnerID {
		t.Errorf("orangetest: challenge body %s: %v", data, err)
	}
	msisdn, _ := b.input("MSISDN")
	if !e164(msisdn) {
		t.Errorf("orangetest: MSISDN %q, want E.164 without tel:", msisdn)
	}

	var op string
	id, isValidation := strings.CutPrefix(r.URL.Path, "/challenge/v1/challenges/")
	switch {
	case r.URL.Path == "/challenge/v1/challenges":
		op = OpCreate
		s.Creates.Add(1)
	case isValidation && id != "":
		op = OpValidate
		s.Validations.Add(1)
	default:
		t.Errorf("orangetest: unexpected path %s", r.URL.Path)
		reply(w, http.StatusNotFound, nil)
		return
	}
	s.mu.Lock()
	fail, hook := s.failure, s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(op)
	}
	if fail != nil {
		if status := fail(op); status != 0 {
			reply(w, status, requestError("SVC1000", "failure set by the test"))
			return
		}
	}
	if op == OpCreate {
		s.create(w, b, msisdn)
	} else {
		s.validate(w, b, id)
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.Tokens.Add(1)
	if id, secret, ok := r.BasicAuth(); !ok || id != ClientID || secret != ClientSecret || r.Method != http.MethodPost {
		reply(w, http.StatusUnauthorized, map[string]any{"code": 42, "message": "Expired credentials"})
		return
	}
	s.mu.Lock()
	tok := "tok-" + rand.Text()
	s.issued[tok] = true
	s.mu.Unlock()
	reply(w, http.StatusOK, map[string]any{"token_type": "Bearer", "access_token": tok, "expires_in": "3600"})
}

func (s *Server) create(w http.ResponseWriter, b body, msisdn string) {
	msg, _ := b.input("message")
	sender, _ := b.input("senderName")
	confirm, hasConfirm := b.input("confirmationCode")
	length, err := func() (int, error) { v, _ := b.input("otpLength"); return strconv.Atoi(v) }()
	if !strings.Contains(msg, "%OTP%") || utf8.RuneCountInString(msg) > 160 || err != nil || length < 4 || length > 8 ||
		!hasConfirm || confirm != "" || utf8.RuneCountInString(sender) > 11 {
		s.t.Errorf("orangetest: create inputs %+v", b.Challenge.Inputs)
		reply(w, http.StatusBadRequest, requestError("SVC0002", "Invalid input value"))
		return
	}
	var idb [12]byte
	_, _ = rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	n, _ := rand.Int(rand.Reader, big.NewInt(0).Exp(big.NewInt(10), big.NewInt(int64(length)), nil))
	code := fmt.Sprintf("%0*d", length, n)
	s.mu.Lock()
	s.challenges[id] = &challenge{code: code}
	s.messages = append(s.messages, Message{ChallengeID: id, MSISDN: msisdn, Country: b.Challenge.Country,
		Text: strings.ReplaceAll(msg, "%OTP%", code), Code: code, SenderName: sender})
	s.mu.Unlock()
	w.Header().Set("Location", "/challenge/v1/challenges/"+id)
	reply(w, http.StatusCreated, nil)
}

func (s *Server) validate(w http.ResponseWriter, b body, id string) {
	code, _ := b.input("confirmationCode")
	info, _ := b.input("info")
	if info == "" {
		s.t.Errorf("orangetest: validation without an info input: %+v", b.Challenge.Inputs)
	}
	s.mu.Lock()
	s.validations = append(s.validations, Validation{ChallengeID: id, Code: code, Info: info})
	c, known := s.challenges[id]
	right := known && (!c.used || s.reusable) && c.code == code
	if right {
		c.used = true
	}
	empty := s.emptyResult
	s.mu.Unlock()
	switch {
	case !known:
		reply(w, http.StatusNotFound, requestError("SVC0004", "unknown challenge"))
	case right:
		reply(w, http.StatusOK, map[string]any{"challenge": map[string]any{"method": "OTP-SMS-AUTH",
			"result": []input{{Type: "OrangeApiToken", Value: "x"}}}})
	case empty:
		reply(w, http.StatusOK, map[string]any{"challenge": map[string]any{"method": "OTP-SMS-AUTH"}})
	default:
		// Orange's text may quote the number: otpgate must not repeat it.
		reply(w, http.StatusBadRequest, requestError("SVC0002", "Invalid input value for tel:"+b.msisdn()))
	}
}

func (b body) msisdn() string { v, _ := b.input("MSISDN"); return v }

func alpha3(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func e164(s string) bool {
	digits, ok := strings.CutPrefix(s, "+")
	if !ok || len(digits) < 6 || len(digits) > 15 || digits[0] == '0' {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
