package provider_test

// The attack suite: what an SMS login page is attacked with — code guessing
// (one by one and 100 at once), SMS pumping (a number range, and countries
// whose codes nobody ever types), flooding one victim's phone from many
// addresses, replayed and cross-flow codes — run against the real provider,
// the real SMS factor and the abuse guard, on memory and on Redis.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/storage"
)

// withGuard puts the abuse guard, with policy p, in front of the SMS factor.
func withGuard(p guard.Policy) envOption {
	return func(c *envConfig) {
		c.wrap = func(t testing.TB, f factors.Factor, s storage.Store, log *slog.Logger) factors.Factor {
			g, err := guard.Wrap(f, s, provider.GuardKey(testSecret), p, guard.WithLogger(log))
			if err != nil {
				t.Fatalf("guard.Wrap: %v", err)
			}
			return g
		}
	}
}

// withTrustedProxies makes the provider believe X-Forwarded-For from these
// addresses, as behind a load balancer.
func withTrustedProxies(proxies ...string) envOption {
	return withOptions(func(o *provider.Options) {
		o.TrustedProxies = proxies
	})
}

// browserFrom is a browser whose requests reach otpgate through the test's
// "load balancer" (127.0.0.1) with X-Forwarded-For set to ip.
func (e *env) browserFrom(ip string) *browser {
	b := e.newBrowser()
	b.tr.base = forwardedFor{ip: ip, base: b.tr.base}
	return b
}

type forwardedFor struct {
	ip   string
	base http.RoundTripper
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.ip)
	return f.base.RoundTrip(r)
}

// askCode starts a login for r in b and submits phone; it returns the answer
// to the phone form: the code page, or a refusal.
func (b *browser) askCode(r *rp, phone string) *page {
	b.t.Helper()
	p := b.get(r.authorize().URL)
	p.expect(http.StatusOK, "/login/phone")
	return b.submit(p.form("/login/phone"), map[string]string{"phone": phone})
}

// smsTo returns the SMS sent to phone, newest first.
func (e *env) smsTo(match func(to string) bool) []storage.OutboxMessage {
	e.t.Helper()
	msgs, err := e.Store.ListOutbox(context.Background(), 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []storage.OutboxMessage
	for _, m := range msgs {
		if match(m.To) {
			out = append(out, m)
		}
	}
	return out
}

func to(phone string) func(string) bool { return func(s string) bool { return s == phone } }

// retryAfter checks that a refusal carries a plausible Retry-After header and
// returns it.
func retryAfter(t *testing.T, p *page, max time.Duration) time.Duration {
	t.Helper()
	secs, err := strconv.Atoi(p.Header.Get("Retry-After"))
	d := time.Duration(secs) * time.Second
	if err != nil || d <= 0 || d > max {
		t.Fatalf("%d %s: Retry-After %q, want 1s to %v", p.Status, p.URL.Path, p.Header.Get("Retry-After"), max)
	}
	return d
}

// attemptsMessage is what a code page says once a number's attempts are spent.
const attemptsMessage = "Too many wrong codes for this number. Try again in"

// Sequential guessing: requesting new codes does not reset the guesser's
// budget. Three codes reach the victim (the per-number send limit), ten
// answers are judged (the per-number attempt limit), then even the right
// code is refused.
func TestAttackBruteForceSequential(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		policy := guard.DefaultPolicy()
		e := newEnv(t, kind, withGuard(policy))
		r := e.newRP(clientTrusted)
		judged, limited := 0, 0
		var last *page
		var lastBrowser *browser
		for flow := 0; flow < 6; flow++ {
			b := e.newBrowser()
			p := b.askCode(r, phoneA)
			if p.Status == http.StatusTooManyRequests {
				p.expect(http.StatusTooManyRequests, "/login/phone")
				retryAfter(t, p, 15*time.Minute)
				continue
			}
			p.expect(http.StatusOK, "/login/code")
			right := e.codeFor(phoneA)
			for {
				p = b.submit(p.form("/login/code"), map[string]string{"code": wrongCode(right)})
				noRedirect(t, p)
				if p.Status == http.StatusTooManyRequests {
					limited++
					break
				}
				p.expect(http.StatusBadRequest, "/login/code")
				judged++
				if strings.Contains(p.alert(), "Start again with a new code") {
					break // this challenge is locked; ask for another
				}
			}
			last, lastBrowser = p, b
		}
		if got := len(e.smsTo(to(phoneA))); got != policy.Limits.Phone.Count {
			t.Errorf("%d codes sent to the victim, want %d", got, policy.Limits.Phone.Count)
		}
		if judged != policy.Limits.Attempts.Count {
			t.Errorf("%d answers judged, want exactly %d", judged, policy.Limits.Attempts.Count)
		}
		if limited == 0 || last == nil {
			t.Fatal("the attempt limit never answered")
		}
		if !strings.HasPrefix(last.alert(), attemptsMessage) {
			t.Errorf("refusal says %q", last.alert())
		}
		retryAfter(t, last, time.Hour+time.Hour/10)
		// The right code of the open challenge is refused too.
		right := e.smsTo(to(phoneA))[0]
		p := lastBrowser.submit(last.form("/login/code"), map[string]string{"code": e.smsCode(right)})
		noRedirect(t, p)
		if p.Status != http.StatusTooManyRequests {
			t.Errorf("the right code after the limit: %d %q", p.Status, p.alerts)
		}
	})
}

// 100 parallel wrong answers, spread over three open challenges of one
// number: exactly as many are judged as the per-number limit allows.
func TestAttackBruteForceParallel(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		policy := guard.DefaultPolicy()
		e := newEnv(t, kind, withGuard(policy))
		r := e.newRP(clientTrusted)
		type target struct {
			b     *browser
			form  form
			right string
		}
		var targets []target
		for range policy.Limits.Phone.Count {
			b := e.newBrowser()
			p := b.askCode(r, phoneA)
			p.expect(http.StatusOK, "/login/code")
			targets = append(targets, target{b, p.form("/login/code"), e.codeFor(phoneA)})
		}

		const guesses = 100
		var (
			wg                        sync.WaitGroup
			mu                        sync.Mutex
			wrongMsg, locked, limited int
		)
		start := make(chan struct{})
		for i := range guesses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tg := targets[i%len(targets)]
				vals := url.Values{}
				for k, v := range tg.form.fields {
					vals[k] = v
				}
				vals.Set("code", wrongCode(tg.right))
				req, _ := http.NewRequest(http.MethodPost, e.abs(tg.form.action), strings.NewReader(vals.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				<-start
				resp, err := tg.b.c.Do(req)
				if err != nil {
					t.Errorf("guess %d: %v", i, err)
					return
				}
				defer resp.Body.Close()
				var body strings.Builder
				buf := make([]byte, 32<<10)
				for {
					n, err := resp.Body.Read(buf)
					body.Write(buf[:n])
					if err != nil {
						break
					}
				}
				text := strings.ReplaceAll(body.String(), "\u00a0", " ")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case resp.StatusCode == http.StatusTooManyRequests && strings.Contains(text, attemptsMessage):
					limited++
				case resp.StatusCode == http.StatusBadRequest && strings.Contains(text, "Wrong code"):
					wrongMsg++
				case resp.StatusCode == http.StatusBadRequest && strings.Contains(text, "Too many wrong codes"):
					locked++ // judged: the challenge's fifth wrong answer, or one it refused
				default:
					t.Errorf("guess %d: status %d, location %q", i, resp.StatusCode, resp.Header.Get("Location"))
				}
			}()
		}
		close(start)
		wg.Wait()
		if judged := wrongMsg + locked; judged != policy.Limits.Attempts.Count || limited != guesses-judged {
			t.Errorf("%d judged (%d wrong, %d locked), %d refused by the limit; want exactly %d judged", judged, wrongMsg, locked, limited, policy.Limits.Attempts.Count)
		}
		// No right code gets through afterwards.
		for _, tg := range targets {
			p := tg.b.submit(tg.form, map[string]string{"code": tg.right})
			noRedirect(t, p)
			if p.Status != http.StatusTooManyRequests && p.Status != http.StatusBadRequest {
				t.Errorf("right code after the attack: %d %q", p.Status, p.alerts)
			}
		}
	})
}

// pumpable returns n valid mobile numbers of region that share everything
// but their last four digits.
func pumpable(t *testing.T, region string, n int) []string {
	t.Helper()
	ex := phonenumbers.GetExampleNumberForType(region, phonenumbers.MOBILE)
	if ex == nil {
		t.Fatalf("no example mobile number for %s", region)
	}
	base := phonenumbers.Format(ex, phonenumbers.E164)
	var out []string
	for i := 0; i < 10000 && len(out) < n; i++ {
		cand := fmt.Sprintf("%s%04d", base[:len(base)-4], (i*37)%10000)
		num, err := phonenumbers.Parse(cand, "")
		if err == nil && phonenumbers.IsValidNumber(num) && phonenumbers.GetNumberType(num) == phonenumbers.MOBILE {
			out = append(out, cand)
		}
	}
	if len(out) < n {
		t.Fatalf("only %d pumpable numbers in %s", len(out), region)
	}
	return out
}

// SMS pumping from a botnet (a new address for every request): a number
// range is cut off by the per-prefix limit, countries whose codes are never
// used by the breaker, while legitimate users elsewhere sign in.
func TestAttackPumping(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		policy := guard.DefaultPolicy()
		policy.Breaker.MinSends = 5
		policy.Breaker.MinConversion = 0.5
		policy.Breaker.Exempt = []string{"FR"} // the home market: see docs/security.md
		e := newEnv(t, kind, withGuard(policy), withTrustedProxies("127.0.0.1"))
		r := e.newRP(clientTrusted)
		bot := 0
		botBrowser := func() *browser {
			bot++
			return e.browserFrom(fmt.Sprintf("10.%d.%d.%d", bot/65536, bot/256%256, bot%256))
		}

		// A legitimate user in Germany signs in while it starts.
		legitDE := pumpable(t, "DE", 1)[0]
		e.browserFrom("198.51.100.10").loginTokens(r, legitDE, legitDE)

		// One French number range: 40 requests, the prefix limit sends 20.
		rangeFR := pumpable(t, "FR", 40)
		for i, phone := range rangeFR {
			p := botBrowser().askCode(r, phone)
			if i < policy.Limits.Prefix.Count {
				p.expect(http.StatusOK, "/login/code")
				continue
			}
			p.expect(http.StatusTooManyRequests, "/login/phone")
			if !strings.HasPrefix(p.alert(), "Too many codes were requested") {
				t.Fatalf("prefix refusal says %q", p.alert())
			}
			retryAfter(t, p, time.Hour+time.Hour/10)
		}
		prefix := rangeFR[0][:len(rangeFR[0])-4]
		if got := len(e.smsTo(func(s string) bool { return strings.HasPrefix(s, prefix) })); got != policy.Limits.Prefix.Count {
			t.Errorf("%d SMS to the pumped range, want %d", got, policy.Limits.Prefix.Count)
		}

		// Four countries where nobody ever types a code: each gets
		// MinSends-1 SMS, then an honest page.
		for _, region := range []string{"JM", "NG", "ID", "RU"} {
			numbers := pumpable(t, region, 12)
			for i, phone := range numbers {
				p := botBrowser().askCode(r, phone)
				if i < policy.Breaker.MinSends-1 {
					p.expect(http.StatusOK, "/login/code")
					continue
				}
				p.expect(http.StatusTooManyRequests, "/login/phone")
				if want := "SMS to numbers in this country is temporarily unavailable"; !strings.HasPrefix(p.alert(), want) {
					t.Fatalf("%s: breaker page says %q", region, p.alert())
				}
				retryAfter(t, p, policy.Breaker.Cooldown)
			}
			cc := strconv.Itoa(int(phonenumbers.GetCountryCodeForRegion(region)))
			sent := e.smsTo(func(s string) bool {
				num, err := phonenumbers.Parse(s, "")
				return err == nil && phonenumbers.GetRegionCodeForNumber(num) == region && strings.HasPrefix(s, "+"+cc)
			})
			if len(sent) != policy.Breaker.MinSends-1 {
				t.Errorf("%s: %d SMS sent, want %d", region, len(sent), policy.Breaker.MinSends-1)
			}
		}
		if logs := e.logs.String(); strings.Count(logs, "breaker opened") != 4 {
			t.Errorf("want 4 breaker error lines, log:\n%s", logs)
		}

		// Legitimate users still sign in: in France (another range) and in
		// Germany, each from their own address.
		e.browserFrom("198.51.100.11").loginTokens(r, phoneB, phoneB)
		legitDE2 := pumpable(t, "DE", 2)[1]
		e.browserFrom("198.51.100.12").loginTokens(r, legitDE2, legitDE2)
	})
}

// One victim, many addresses: the number receives the per-number limit of
// codes, whatever the number of attackers.
func TestAttackFloodVictimFromManyIPs(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		policy := guard.DefaultPolicy()
		e := newEnv(t, kind, withGuard(policy), withTrustedProxies("127.0.0.1"))
		r := e.newRP(clientTrusted)
		refused := 0
		for i := range 30 {
			p := e.browserFrom(fmt.Sprintf("203.0.113.%d", i+1)).askCode(r, phoneA)
			switch p.Status {
			case http.StatusOK:
				p.expect(http.StatusOK, "/login/code")
			case http.StatusTooManyRequests:
				retryAfter(t, p, 10*time.Minute+10*time.Minute/3)
				refused++
			default:
				t.Fatalf("request %d: %d %q", i, p.Status, p.alerts)
			}
		}
		if got := len(e.smsTo(to(phoneA))); got != policy.Limits.Phone.Count {
			t.Errorf("the victim received %d codes, want %d", got, policy.Limits.Phone.Count)
		}
		if refused != 30-policy.Limits.Phone.Count {
			t.Errorf("%d refused, want %d", refused, 30-policy.Limits.Phone.Count)
		}
	})
}

// X-Forwarded-For is believed only from a trusted proxy: without one, a
// forged header does not buy a new address; behind one, addresses the
// client prepends are not believed either.
func TestForwardedForNeedsATrustedProxy(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		policy := guard.Policy{NumberTypes: guard.DefaultNumberTypes}
		policy.Limits.IP = guard.Limit{Count: 3, Window: 10 * time.Minute}
		numbers := pumpable(t, "FR", 8)

		e := newEnv(t, kind, withGuard(policy)) // no trusted proxy
		r := e.newRP(clientTrusted)
		for i, phone := range numbers[:4] {
			p := e.browserFrom(fmt.Sprintf("192.0.2.%d", i+1)).askCode(r, phone)
			if want := map[bool]int{true: http.StatusOK, false: http.StatusTooManyRequests}[i < 3]; p.Status != want {
				t.Fatalf("forged X-Forwarded-For, request %d: %d, want %d", i, p.Status, want)
			}
		}
		if n := strings.Count(e.logs.String(), "X-Forwarded-For received from an address that is not in http.trusted_proxies"); n != 1 {
			t.Errorf("the ignored X-Forwarded-For was reported %d times, want once", n)
		}

		e = newEnv(t, kind, withGuard(policy), withTrustedProxies("127.0.0.1"))
		r = e.newRP(clientTrusted)
		for i, phone := range numbers[4:] {
			// The proxy appends the real address; the client forged the rest.
			p := e.browserFrom(fmt.Sprintf("192.0.2.%d, 198.51.100.99", i+1)).askCode(r, phone)
			if want := map[bool]int{true: http.StatusOK, false: http.StatusTooManyRequests}[i < 3]; p.Status != want {
				t.Fatalf("prepended addresses, request %d: %d, want %d", i, p.Status, want)
			}
		}
	})
}

// Codes are single use and bound to their challenge, flow and client.
func TestAttackReplayAndCrossFlowCodes(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, withGuard(guard.DefaultPolicy()), withTrustedProxies("127.0.0.1"))
		rA, rB := e.newRP(clientTrusted), e.newRP(clientPublic)

		// A code used once cannot be used again, not even in the same form.
		victim := e.browserFrom("198.51.100.1")
		ar := rA.authorize()
		p := victim.get(ar.URL)
		p = victim.submit(p.form("/login/phone"), map[string]string{"phone": phoneA})
		p.expect(http.StatusOK, "/login/code")
		codeForm, code := p.form("/login/code"), e.codeFor(phoneA)
		tok := rA.exchange(rA.callback(victim.submit(codeForm, map[string]string{"code": code}), ar), ar)
		if tok.AccessToken == "" {
			t.Fatal("no access token")
		}
		p = victim.submit(codeForm, map[string]string{"code": code})
		noRedirect(t, p)
		if p.Status < 400 {
			t.Errorf("replayed code: %d", p.Status)
		}
		// Nor in a new login for the same number.
		p = victim.askCode(rA, phoneA)
		p.expect(http.StatusOK, "/login/code")
		p = victim.submit(p.form("/login/code"), map[string]string{"code": code})
		noRedirect(t, p)
		p.expect(http.StatusBadRequest, "/login/code")

		// Two open flows for one number (the attacker's and the victim's, of
		// different clients): each code works only in its own flow.
		attacker := e.browserFrom("203.0.113.66")
		pa := attacker.askCode(rB, phoneB)
		pa.expect(http.StatusOK, "/login/code")
		codeAttacker := e.codeFor(phoneB)
		pv := victim.askCode(rA, phoneB)
		pv.expect(http.StatusOK, "/login/code")
		codeVictim := e.codeFor(phoneB)
		if codeVictim == codeAttacker {
			t.Skip("the two random codes collided (one chance in a million)")
		}
		pa = attacker.submit(pa.form("/login/code"), map[string]string{"code": codeVictim})
		noRedirect(t, pa)
		pa.expect(http.StatusBadRequest, "/login/code")
		// The victim's own flow still completes with its code.
		pv = victim.submit(pv.form("/login/code"), map[string]string{"code": codeVictim})
		if loc := pv.Header.Get("Location"); !strings.HasPrefix(loc, redirectURI(clientTrusted)) {
			t.Errorf("the victim's code in its own flow: %d %q", pv.Status, pv.alerts)
		}
		// And the victim's flow cookie cannot be used to post to the
		// attacker's flow: another browser's flow is refused outright.
		pf := victim.submit(pa.form("/login/code"), map[string]string{"code": codeAttacker})
		noRedirect(t, pf)
		if pf.Status != http.StatusForbidden {
			t.Errorf("posting to another browser's flow: %d, want 403", pf.Status)
		}
	})
}
